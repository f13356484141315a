/* Search with an outside image: drop it on the zone, paste it anywhere on the page (not
 * while typing in a field), or choose it. A bare form has no zone: the page's own drop zone
 * hands the file to window.similarityImageSearch. The file is sent to the project's image-search
 * URL; the answer is the results page to open, or the reason it was refused, read out in
 * the zone's live region. The File is kept in this browser (IndexedDB, by query id, for a
 * day) so the results page can offer "Add to dataset" without the server keeping it. */
(function () {
  "use strict";
  var DB = "similarity-query-images";
  var STORE = "files";
  var DAY = 24 * 3600 * 1000;

  function openDb() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error("no IndexedDB")); return; }
      var request = indexedDB.open(DB, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: "id" }); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function withStore(mode, action) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = action(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(result && "result" in result ? result.result : undefined); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function keepFile(id, file) {
    return withStore("readwrite", function (store) {
      var now = Date.now();
      store.openCursor().onsuccess = function (e) {
        var cursor = e.target.result;
        if (!cursor) { return; }
        if (now - cursor.value.saved > DAY) { cursor.delete(); }
        cursor.continue();
      };
      store.put({ id: id, file: file, name: file.name, saved: now });
    });
  }

  function findFile(id) {
    return withStore("readonly", function (store) { return store.get(id); })
      .then(function (row) { return row ? row.file : null; }, function () { return null; });
  }

  // The region tool (look_closer.js) searches with a region of the same file.
  window.similarityQueryFiles = { find: findFile, keep: keepFile };

  function say(status, text, isError) {
    status.textContent = text;
    status.classList.toggle("is-error", !!isError);
  }

  function nameOf(file) {
    return file.name || "pasted image";
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () {
        return { error: "the server answered " + response.status + " " + response.statusText };
      }).then(function (body) { body.ok = response.ok; return body; });
    });
  }

  function imageFrom(list) {
    for (var i = 0; list && i < list.length; i++) {
      var item = list[i];
      var file = item.getAsFile ? (item.kind === "file" ? item.getAsFile() : null) : item;
      if (file) { return file; }
    }
    return null;
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    if (target.isContentEditable) { return true; }
    var field = target.closest("input, textarea, select");
    if (!field) { return false; }
    return !(field.tagName === "INPUT" && /^(file|button|submit|checkbox|radio|range|reset)$/i.test(field.type));
  }

  function setUpSearch(form) {
    var zone = form.querySelector("[data-image-query-zone]");
    var input = form.querySelector("[data-image-query-input]");
    var status = form.querySelector("[data-image-query-status]");
    var busy = false;

    function search(file) {
      if (!file || busy) { return; }
      var name = nameOf(file);
      busy = true;
      form.setAttribute("aria-busy", "true");
      say(status, "Searching with " + name + "…");
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      data.append("order", form.querySelector("[name=order]").value);
      var target = form.querySelector("[name=target]");  // "Add it to" starts there
      if (target) { data.append("target", target.value); }
      data.append("image", file, name);
      post(form.action, data).then(function (body) {
        if (!body.ok) { throw new Error(body.error || (name + ": the search failed")); }
        say(status, "Found results for " + name + "; opening them…");
        var stored = keepFile(body.id, file).catch(function () {});
        var timeout = new Promise(function (resolve) { setTimeout(resolve, 500); });
        return Promise.race([stored, timeout]).then(function () { window.location.assign(body.url); });
      }).catch(function (error) {
        busy = false;
        form.removeAttribute("aria-busy");
        var text = error && error.message ? error.message : String(error);
        if (error instanceof TypeError) { text = name + ": the server could not be reached (" + text + ")"; }
        say(status, text, true);
        input.value = "";
      });
    }

    input.addEventListener("change", function () { search(input.files[0]); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (input.files[0]) { search(input.files[0]); } else { input.click(); }
    });
    if (!zone) { return search; }  // a bare form: the page's own drop zone offers the search
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) {
        e.preventDefault(); e.stopPropagation(); zone.classList.add("is-over");
      });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("is-over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault(); e.stopPropagation();
      zone.classList.remove("is-over");
      var file = imageFrom(e.dataTransfer && e.dataTransfer.files);
      if (file) { search(file); } else { say(status, "Drop an image file to search with it.", true); }
    });
    return search;
  }

  function setUpAdd(form) {
    var id = form.getAttribute("data-query-id");
    var status = form.querySelector("[data-image-add-status]");
    var picker = form.querySelector("[data-image-add-file]");
    var stored = null;
    findFile(id).then(function (file) {
      if (file) { stored = file; picker.hidden = true; }
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var data = new FormData(form);
      var chosen = data.get("image");
      if ((!chosen || !chosen.size) && stored) { data.set("image", stored, nameOf(stored)); }
      var file = data.get("image");
      if (!file || !file.size) { picker.hidden = false; say(status, "Choose the file again to add it.", true); return; }
      say(status, "Adding " + nameOf(file) + "…");
      post(form.action, data).then(function (body) {
        if (!body.ok) { throw new Error(body.error || "the image could not be added"); }
        status.textContent = "";
        status.classList.remove("is-error");
        status.append("Added " + (body.label || nameOf(file)) + ". ");
        var link = document.createElement("a");
        link.href = body.url;
        link.textContent = "Open it";
        status.append(link);
      }).catch(function (error) { say(status, error.message || String(error), true); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("[data-image-query]");
    var search = forms.length ? setUpSearch(forms[0]) : null;
    if (search) {
      // the page's one drop zone (the dataset page's upload area) offers "Search with this image"
      window.similarityImageSearch = search;
      document.addEventListener("paste", function (e) {
        if (typing(e.target)) { return; }
        var data = e.clipboardData;
        var file = data && (imageFrom(data.files) || imageFrom(data.items));
        if (!file || !/^image\//.test(file.type || "image/")) { return; }
        e.preventDefault();
        search(file);
      });
    }
    var add = document.querySelector("[data-image-add]");
    if (add) { setUpAdd(add); }
  });
})();
