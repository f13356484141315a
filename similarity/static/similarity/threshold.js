// Similarity threshold slider and largest-gap marker on results pages (issue 12).
// Most similar first: "Similarity ≥ x" hides tiles scored below x (?min_similarity=).
// Least similar first: "Similarity ≤ x" hides tiles scored above x (?max_similarity=), so
// it trims the similar end and keeps the least alike the user asked for. The bound stays
// in the URL (the page can be shared and reloaded: the server trims the same way), and
// the "Largest drop" marker sits between the two tiles it separates, with a button that
// keeps the results before it.
(function () {
  "use strict";

  function scoreOf(tile) {
    var el = tile.querySelector("[data-similarity]");
    return el ? parseFloat(el.getAttribute("data-similarity")) : null;
  }

  function resultTiles() {
    return Array.prototype.slice.call(
      document.querySelectorAll('[data-testid="results"] > li[data-asset-id]')
    ).filter(function (tile) { return scoreOf(tile) !== null; });
  }

  function placeGapMarker() {
    var marker = document.querySelector("[data-gap-marker]");
    if (!marker) { return null; }
    var after = marker.getAttribute("data-gap-after");
    var tile = resultTiles().filter(function (t) {
      return t.getAttribute("data-asset-id") === after;
    })[0];
    if (!tile || !tile.nextElementSibling) { return null; }
    var item = document.createElement("li");
    item.className = "similarity-gap similarity-gap--inline";
    item.setAttribute("data-testid", "gap-marker-inline");
    item.setAttribute("data-gap-after", after);
    var text = marker.querySelector(".similarity-gap__text");
    item.textContent = text ? text.textContent : "";
    tile.parentNode.insertBefore(item, tile.nextElementSibling);
    var where = marker.querySelector("[data-gap-where]");
    if (where) { where.hidden = true; }
    return item;
  }

  function init(form) {
    var range = form.querySelector("[data-threshold-range]");
    var output = form.querySelector("[data-threshold-value]");
    var count = form.querySelector("[data-threshold-count]");
    var apply = form.querySelector("[data-threshold-apply]");
    var serverBound = form.getAttribute("data-server-bound");
    var least = form.getAttribute("data-order") === "least";
    var param = range.name;  // min_similarity, or max_similarity in least order
    var inline = placeGapMarker();
    var marker = document.querySelector("[data-gap-marker]");
    if (inline && marker) {
      // "Keep the results above (below) the drop": the slider jumps to the score before it.
      var keep = document.createElement("button");
      keep.type = "button";
      keep.className = "link-button similarity-gap__keep";
      keep.setAttribute("data-gap-keep", "");
      keep.textContent = form.getAttribute("data-keep-label") || "Keep results above";
      keep.addEventListener("click", function () {
        var before = parseFloat(marker.getAttribute("data-gap-before-score"));
        range.value = (least ? Math.ceil(before * 100) / 100 : Math.floor(before * 100) / 100).toFixed(2);
        update();
        remember();
        range.focus();
      });
      inline.appendChild(document.createTextNode(" "));
      inline.appendChild(keep);
    }
    if (apply) { apply.hidden = true; } // the slider applies itself; the button is for no-JS
    var template = count.textContent.replace(/^\s*\d+/, "{n}");

    function update() {
      var value = parseFloat(range.value);
      var tiles = resultTiles();
      var shown = 0;
      tiles.forEach(function (tile) {
        var visible = least ? scoreOf(tile) <= value + 1e-9 : scoreOf(tile) >= value - 1e-9;
        tile.hidden = !visible;
        if (visible) { shown += 1; }
      });
      if (inline) {
        var before = inline.previousElementSibling;
        inline.hidden = !before || before.hidden;
      }
      output.textContent = value.toFixed(2);
      count.textContent = template.replace("{n}", String(shown));
      var saveField = document.querySelector("[data-save-threshold]");
      if (saveField) { saveField.value = trimsNothing(value) ? "" : value.toFixed(2); }
    }

    function trimsNothing(value) {
      return least ? value >= parseFloat(range.max) : value <= parseFloat(range.min);
    }

    function remember() {
      var url = new URL(window.location.href);
      var value = parseFloat(range.value);
      if (trimsNothing(value)) {
        url.searchParams.delete(param);
      } else {
        url.searchParams.set(param, value.toFixed(2));
      }
      var bound = serverBound ? parseFloat(serverBound) : null;
      if (bound !== null && (least ? value > bound : value < bound)) {
        // Tiles below the server's threshold were never sent: fetch them.
        window.location.assign(url.toString());
        return;
      }
      window.history.replaceState(null, "", url.toString());
    }

    range.addEventListener("input", update);
    range.addEventListener("change", function () { update(); remember(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); remember(); });
    update();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-threshold]"), init);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
