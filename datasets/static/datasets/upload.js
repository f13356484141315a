/* Upload area: several files at once, drag and drop, per-file progress and errors.
   Each file is its own request, so one bad file never fails the others.
   It is the page's one drop zone: a drop asks "Upload to this dataset" (the default, focused)
   or "Search with this image" (the first image dropped, through similarity's
   window.similarityImageSearch); Escape or Cancel drops nothing. */
(function () {
  "use strict";
  var PARALLEL = 3;

  function row(list, file) {
    var li = document.createElement("li");
    li.className = "upload__item";
    var name = document.createElement("span");
    name.className = "upload__name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    var status = document.createElement("span");
    status.className = "upload__status";
    status.textContent = "Waiting";
    li.append(name, bar, status);
    list.prepend(li);
    return { li: li, bar: bar, status: status };
  }

  function send(form, file, ui) {
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      data.append("files", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      ui.status.textContent = "Uploading";
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) ui.bar.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.onload = function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        var result = body && body.results ? body.results[0] : null;
        if (result && result.ok) {
          ui.bar.value = 100;
          ui.li.classList.add("is-ok");
          ui.status.textContent = result.kind === "video" ? "Uploaded (video)" : "Uploaded";
        } else {
          ui.li.classList.add("is-error");
          ui.status.textContent = (result && result.error) || (body && body.error) ||
            ("Upload failed (HTTP " + xhr.status + ")");
        }
        resolve();
      };
      xhr.onerror = function () {
        ui.li.classList.add("is-error");
        ui.status.textContent = "Network error: the file was not uploaded";
        resolve();
      };
      xhr.send(data);
    });
  }

  function refreshGrid() {
    return fetch(location.href, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["grid", "count"].forEach(function (id) {
          var fresh = doc.querySelector('[data-testid="' + id + '"]');
          var old = document.querySelector('[data-testid="' + id + '"]');
          if (fresh && old) old.replaceWith(fresh);
        });
        document.dispatchEvent(new CustomEvent("similarity:changed"));
      });
  }

  function upload(form, files) {
    var list = form.querySelector("[data-upload-list]");
    var queue = Array.prototype.slice.call(files).map(function (f) { return [f, row(list, f)]; });
    var running = 0;
    return new Promise(function (resolve) {
      function next() {
        if (!queue.length && !running) { resolve(); return; }
        while (running < PARALLEL && queue.length) {
          var item = queue.shift();
          running += 1;
          send(form, item[0], item[1]).then(function () { running -= 1; next(); });
        }
      }
      next();
    }).then(refreshGrid);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-upload]");
    if (!form) return;
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-dropzone]");
    input.addEventListener("change", function () {
      if (input.files.length) upload(form, input.files).then(function () { input.value = ""; });
    });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("is-over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove("is-over"); });
    });
    var choice = zone.querySelector("[data-drop-choice]");
    var pending = null;
    function closeChoice() {
      pending = null;
      choice.hidden = true;
    }
    function offer(files) {
      var image = Array.prototype.filter.call(files, function (f) { return /^image\//.test(f.type || ""); })[0];
      var search = choice.querySelector("[data-drop-search]");
      var canSearch = !!(image && window.similarityImageSearch);
      pending = { files: files, image: image };
      choice.querySelector("[data-drop-choice-text]").textContent = files.length === 1
        ? files[0].name + ":" : files.length + " files:";
      choice.querySelector("[data-drop-upload]").textContent = files.length === 1
        ? "Upload to this dataset" : "Upload all " + files.length + " to this dataset";
      search.hidden = !canSearch;
      search.textContent = files.length === 1 || !image ? "Search with this image"
        : "Search with " + image.name;
      choice.hidden = false;
      choice.querySelector("[data-drop-upload]").focus();
    }
    choice.querySelector("[data-drop-upload]").addEventListener("click", function () {
      var files = pending && pending.files;
      closeChoice();
      if (files) upload(form, files);
    });
    choice.querySelector("[data-drop-search]").addEventListener("click", function () {
      var image = pending && pending.image;
      closeChoice();
      if (image && window.similarityImageSearch) window.similarityImageSearch(image);
    });
    choice.querySelector("[data-drop-cancel]").addEventListener("click", closeChoice);
    choice.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); closeChoice(); }
    });
    zone.addEventListener("drop", function (e) {
      // the File objects outlive the event; the DataTransfer's list does not
      if (e.dataTransfer && e.dataTransfer.files.length) offer(Array.prototype.slice.call(e.dataTransfer.files));
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (input.files.length) upload(form, input.files);
    });
  });
})();
