/* Look closer (issue 25).
 * - "Search a region": a dialog shows the image; drag to draw a box (mouse, pen, touch),
 *   drag the box to move it, or use the keyboard on the box (arrows move it, Shift+arrows
 *   resize it; it starts centred). The region is posted as fractions of the image with
 *   the asset's id, or with the outside file again (kept in this browser by
 *   image_query.js, or chosen again), and the browser opens the results.
 * - "Show match": fetches the map of a result against the query and lays its overlay on
 *   the result (and the reverse map on the query tile), with a legend and the map's text
 *   alternative; a second click hides it. A page marks its tiles (data-match-tile), the
 *   query's (data-match-query), and in each the picture the overlay covers
 *   (data-match-picture) and the image it describes (data-match-thumb). */
(function () {
  "use strict";
  var MIN_PX = 32;
  var STEP = 0.02;

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function pct(v) { return Math.round(v * 100) + "%"; }

  function setUpRegion(dialog) {
    var form = dialog.querySelector("[data-region-form]");
    var frame = dialog.querySelector("[data-region-frame]");
    var image = dialog.querySelector("[data-region-image]");
    var box = dialog.querySelector("[data-region-box]");
    var readout = dialog.querySelector("[data-region-readout]");
    var status = dialog.querySelector("[data-region-status]");
    var filePara = dialog.querySelector("[data-region-file]");
    var fileInput = dialog.querySelector("[data-region-file-input]");
    var region = { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };
    var source = null;  // {asset, query, width, height, file}

    function minW() { return source && source.width ? Math.min(1, MIN_PX / source.width) : 0.02; }
    function minH() { return source && source.height ? Math.min(1, MIN_PX / source.height) : 0.02; }

    function draw() {
      box.style.left = (region.x * 100) + "%";
      box.style.top = (region.y * 100) + "%";
      box.style.width = (region.w * 100) + "%";
      box.style.height = (region.h * 100) + "%";
      var size = "";
      if (source && source.width) {
        size = " (" + Math.round(region.w * source.width) + "×" + Math.round(region.h * source.height) + " px)";
      }
      var text = "Box: " + pct(region.x) + " from the left, " + pct(region.y) + " from the top, " +
        pct(region.w) + " wide, " + pct(region.h) + " high" + size + ".";
      readout.textContent = text;
      box.setAttribute("aria-label", text);
    }

    function fit() {  // keep the box inside the image and at least MIN_PX a side
      region.w = clamp(region.w, minW(), 1);
      region.h = clamp(region.h, minH(), 1);
      region.x = clamp(region.x, 0, 1 - region.w);
      region.y = clamp(region.y, 0, 1 - region.h);
      draw();
    }

    function point(e) {
      var rect = image.getBoundingClientRect();
      return { x: clamp((e.clientX - rect.left) / rect.width, 0, 1),
               y: clamp((e.clientY - rect.top) / rect.height, 0, 1) };
    }

    var drag = null;
    frame.addEventListener("pointerdown", function (e) {
      if (e.button !== undefined && e.button !== 0) { return; }
      var p = point(e);
      frame.setPointerCapture(e.pointerId);
      if (e.target === box) {
        drag = { mode: "move", dx: p.x - region.x, dy: p.y - region.y };
      } else {
        drag = { mode: "draw", ox: p.x, oy: p.y };
        region = { x: p.x, y: p.y, w: minW(), h: minH() };
        fit();
      }
      e.preventDefault();
    });
    frame.addEventListener("pointermove", function (e) {
      if (!drag) { return; }
      var p = point(e);
      if (drag.mode === "move") {
        region.x = p.x - drag.dx;
        region.y = p.y - drag.dy;
      } else {
        region.x = Math.min(drag.ox, p.x);
        region.y = Math.min(drag.oy, p.y);
        region.w = Math.abs(p.x - drag.ox);
        region.h = Math.abs(p.y - drag.oy);
      }
      fit();
    });
    function stop() { if (drag) { drag = null; box.focus(); } }
    frame.addEventListener("pointerup", stop);
    frame.addEventListener("pointercancel", stop);

    box.addEventListener("keydown", function (e) {
      var dx = 0, dy = 0;
      if (e.key === "ArrowLeft") { dx = -STEP; } else if (e.key === "ArrowRight") { dx = STEP; }
      else if (e.key === "ArrowUp") { dy = -STEP; } else if (e.key === "ArrowDown") { dy = STEP; }
      else { return; }
      e.preventDefault();
      if (e.shiftKey) { region.w += dx; region.h += dy; } else { region.x += dx; region.y += dy; }
      fit();
    });

    dialog.querySelector("[data-region-cancel]").addEventListener("click", function () { dialog.close(); });

    function open(button) {
      source = {
        asset: button.getAttribute("data-region-asset"),
        query: button.getAttribute("data-region-query"),
        width: parseInt(button.getAttribute("data-region-width"), 10) || 0,
        height: parseInt(button.getAttribute("data-region-height"), 10) || 0,
        file: null
      };
      dialog.querySelector("[data-region-name]").textContent = button.getAttribute("data-region-name") || "";
      image.src = button.getAttribute("data-region-src");
      var order = button.getAttribute("data-region-order");
      if (order) { form.elements.order.value = order; }
      status.textContent = "";
      filePara.hidden = true;
      region = { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };
      fit();
      if (source.query && window.similarityQueryFiles) {
        window.similarityQueryFiles.find(source.query).then(function (file) {
          source.file = file;
          filePara.hidden = !!file;
        });
      } else if (source.query) {
        filePara.hidden = false;
      }
      dialog.showModal();
      box.focus();
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var data = new FormData();
      data.set("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      data.set("order", form.elements.order.value);
      data.set("region", [region.x, region.y, region.w, region.h].map(function (v) { return v.toFixed(6); }).join(","));
      var file = null;
      if (source.asset) {
        data.set("asset", source.asset);
      } else {
        file = (fileInput.files && fileInput.files[0]) || source.file;
        if (!file) { filePara.hidden = false; status.textContent = "Choose the file again to search with a region of it."; fileInput.focus(); return; }
        data.set("image", file, file.name || "pasted image");
      }
      status.textContent = "Searching…";
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin",
                           headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
        .then(function (answer) {
          if (!answer.ok) { throw new Error(answer.body.error || "The region could not be searched."); }
          var go = function () { window.location.assign(answer.body.url); };
          if (file && window.similarityQueryFiles) {
            window.similarityQueryFiles.keep(answer.body.id, file).then(go, go);
          } else { go(); }
        })
        .catch(function (error) { status.textContent = error.message || String(error); });
    });

    document.addEventListener("click", function (e) {
      var button = e.target.closest && e.target.closest("[data-region-open]");
      if (button) { e.preventDefault(); open(button); }
    });
    document.querySelectorAll("[data-region-open]").forEach(function (b) { b.hidden = false; });
  }

  // --- Show match ----------------------------------------------------------------------

  var shownOnQuery = null;

  function label(button, text) {  // the visible words only: a screen reader's suffix stays
    (button.querySelector("[data-match-label]") || button).textContent = text;
  }

  function legend(tile, body, caption) {
    var id = "match-legend-" + Math.random().toString(36).slice(2);
    var p = document.createElement("p");
    p.className = "match-legend";
    p.id = id;
    p.setAttribute("data-match-legend", "");
    var label = document.createElement("strong");
    label.textContent = caption;
    var scale = document.createElement("span");
    scale.className = "match-legend__scale";
    var ramp = document.createElement("span");
    ramp.className = "match-legend__ramp";
    ramp.style.background = "linear-gradient(to right, " + body.legend.join(", ") + ")";
    ramp.setAttribute("aria-hidden", "true");
    scale.append(body.min.toFixed(2) + " ", ramp, " " + body.max.toFixed(2));
    scale.title = "cosine similarity of each part to the query, weakest to strongest";
    var text = document.createElement("span");
    text.textContent = body.description;
    p.append(label, scale, text);
    tile.append(p);
    return id;
  }

  function overlay(tile, body, caption) {
    clear(tile);
    var host = tile.querySelector("[data-match-picture]");
    var img = document.createElement("img");
    img.className = "tile__overlay";
    img.alt = "";
    img.setAttribute("data-match-overlay", "");
    img.src = body.png_url;
    host.append(img);
    var id = legend(tile, body, caption);
    var thumb = tile.querySelector("[data-match-thumb]");
    if (thumb) { thumb.setAttribute("aria-describedby", id); }
  }

  function clear(tile) {
    tile.querySelectorAll("[data-match-overlay], [data-match-legend]").forEach(function (n) { n.remove(); });
    var thumb = tile.querySelector("[data-match-thumb]");
    if (thumb) { thumb.removeAttribute("aria-describedby"); }
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.error || body.detail || "The match could not be shown."); }
          return body;
        });
      });
  }

  function showMatch(button) {
    var tile = button.closest("[data-match-tile]");
    var query = document.querySelector("[data-match-query]");
    var menu = button.closest("[role=menu]");
    if (menu) {
      menu.hidden = true;
      var opener = document.querySelector("[aria-controls='" + menu.id + "']");
      if (opener) { opener.setAttribute("aria-expanded", "false"); opener.focus(); }
    }
    if (tile.hasAttribute("data-match-shown")) {
      tile.removeAttribute("data-match-shown");
      clear(tile);
      if (query && shownOnQuery === tile) { clear(query); shownOnQuery = null; }
      label(button, "Show match");
      return;
    }
    var url = button.getAttribute("data-show-match");
    var status = document.createElement("p");
    status.className = "match-legend";
    status.setAttribute("data-match-legend", "");
    status.setAttribute("role", "status");
    status.textContent = "Finding where it matches…";
    clear(tile);
    tile.append(status);
    getJson(url).then(function (body) {
      document.querySelectorAll("[data-match-shown]").forEach(function (other) {
        if (other !== tile) {  // one result's maps at a time
          other.removeAttribute("data-match-shown");
          clear(other);
          var b = other.querySelector("[data-show-match]");
          if (b) { label(b, "Show match"); }
        }
      });
      overlay(tile, body, "Match map");
      tile.setAttribute("data-match-shown", "");
      label(button, "Hide match");
      if (!query) { return; }
      clear(query);
      shownOnQuery = null;
      getJson(url + (url.indexOf("?") < 0 ? "?" : "&") + "side=query").then(function (back) {
        if (!tile.hasAttribute("data-match-shown")) { return; }  // hidden meanwhile
        overlay(query, back, "Where it matches “" + back.result.label + "”");
        shownOnQuery = tile;
      }).catch(function (error) {  // the result's map stays; the query says why not
        var note = document.createElement("p");
        note.className = "match-legend is-error";
        note.setAttribute("data-match-legend", "");
        note.setAttribute("role", "status");
        note.textContent = error.message || String(error);
        query.append(note);
      });
    }).catch(function (error) {
      clear(tile);
      status.textContent = error.message || String(error);
      status.classList.add("is-error");
      tile.append(status);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var dialog = document.querySelector("[data-region-dialog]");
    if (dialog && dialog.showModal) { setUpRegion(dialog); }
    document.addEventListener("click", function (e) {
      var button = e.target.closest && e.target.closest("[data-show-match]");
      if (button) { e.preventDefault(); showMatch(button); }
    });
  });
})();
