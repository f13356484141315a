/* Selection of images on a grid: checkboxes (shift-click for ranges), select all / none,
   "Find similar to selection", "Not like these" (counter-examples), and bulk actions
   posted by the toolbar's form (similarity/includes/select_toolbar.html).

   The tiles' checkboxes are real <input type="checkbox"> with labels, rendered hidden
   and revealed here, so a page without JavaScript shows no control that does nothing.
   No inline handlers: everything is wired from this file. */
(function () {
  "use strict";

  function format(template, n) {
    return template.replace("%(n)s", String(n));
  }

  function init(form) {
    var boxes = function () {
      return Array.prototype.slice.call(document.querySelectorAll("[data-select-box]"));
    };
    var negatives = new Set();
    var last = null;
    var count = form.querySelector("[data-select-count]");
    var error = form.querySelector("[data-select-error]");
    var clearMarks = form.querySelector("[data-clear-negative]");
    var dialog = form.querySelector("[data-confirm-dialog]");
    var confirmInput = form.querySelector("[data-confirm-input]");
    var pending = null;

    form.hidden = false;
    boxes().forEach(function (box) {
      box.hidden = false;
      var label = document.querySelector('label[for="' + box.id + '"]');
      if (label) label.hidden = false;
      box.closest(".tile") && box.closest(".tile").classList.add("tile--selectable");
    });

    function selected() {
      var seen = new Set();
      return boxes().filter(function (box) {
        if (!box.checked || seen.has(box.value)) return false;
        seen.add(box.value);
        return true;
      }).map(function (box) { return box.value; });
    }

    function update() {
      var ids = selected();
      var text = format(form.dataset.labelCount, ids.length);
      if (negatives.size) text += " · " + format(form.dataset.labelNegative, negatives.size);
      count.textContent = text;
      clearMarks.hidden = negatives.size === 0;
      boxes().forEach(function (box) {
        var tile = box.closest(".tile");
        if (tile) tile.classList.toggle("tile--selected", box.checked);
      });
      if (ids.length) error.textContent = "";
      // nothing selected (or marked): only the "Select" affordances show
      var empty = ids.length === 0 && negatives.size === 0;
      form.toggleAttribute("data-empty", empty);
      if (empty) showActions(false);
    }

    var actionsToggle = form.querySelector("[data-actions-toggle]");
    var actionsPanel = form.querySelector("[data-actions-panel]");
    function showActions(open) {
      if (!actionsToggle || !actionsPanel) return;
      actionsPanel.hidden = !open;
      actionsToggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    if (actionsToggle) {
      actionsToggle.addEventListener("click", function () {
        var open = actionsPanel.hidden;
        showActions(open);
        if (open) {
          var first = actionsPanel.querySelector("input, select, button");
          if (first) first.focus();
        }
      });
      actionsPanel.addEventListener("keydown", function (event) {
        if (event.key === "Escape") { showActions(false); actionsToggle.focus(); }
      });
      document.addEventListener("click", function (event) {
        if (!actionsPanel.hidden && !event.target.closest(".select-toolbar__more") &&
            !event.target.closest("[data-confirm-dialog]")) showActions(false);
      });
    }

    function mark(id, on) {
      document.querySelectorAll('.tile[data-asset-id="' + CSS.escape(id) + '"]').forEach(function (tile) {
        tile.classList.toggle("tile--negative", on);
        var badge = tile.querySelector("[data-negative-badge]");
        if (on && !badge) {
          badge = document.createElement("span");
          badge.className = "tile__negative";
          badge.setAttribute("data-negative-badge", "");
          badge.textContent = form.dataset.labelBadge;
          tile.appendChild(badge);
        } else if (!on && badge) {
          badge.remove();
        }
      });
      if (on) negatives.add(id); else negatives.delete(id);
    }

    function setAll(checked) {
      boxes().forEach(function (box) { box.checked = checked; });
      last = null;
      update();
    }

    document.addEventListener("click", function (event) {
      var box = event.target.closest && event.target.closest("[data-select-box]");
      if (!box) return;
      var all = boxes();
      if (event.shiftKey && last && last !== box && all.indexOf(last) !== -1) {
        var from = all.indexOf(last), to = all.indexOf(box);
        var range = all.slice(Math.min(from, to), Math.max(from, to) + 1);
        range.forEach(function (item) { item.checked = box.checked; });
      }
      // the same image may have a tile twice on a page (query and result): keep them equal
      all.forEach(function (item) {
        if (item !== box && item.value === box.value) item.checked = box.checked;
      });
      if (box.checked && negatives.has(box.value)) mark(box.value, false);
      last = box;
      update();
    });
    document.addEventListener("change", function (event) {
      if (event.target.matches && event.target.matches("[data-select-box]")) update();
    });

    form.querySelector("[data-select-all]").addEventListener("click", function () { setAll(true); });
    // "Select the test-side copies" (leakage) and the like: buttons outside the toolbar
    document.querySelectorAll("[data-select-these]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { setAll(true); });
    });
    form.querySelector("[data-select-none]").addEventListener("click", function () { setAll(false); });

    form.querySelector("[data-mark-negative]").addEventListener("click", function () {
      var ids = selected();
      if (!ids.length) { error.textContent = form.dataset.labelEmpty; return; }
      ids.forEach(function (id) { mark(id, true); });
      boxes().forEach(function (box) { if (negatives.has(box.value)) box.checked = false; });
      update();
    });
    clearMarks.addEventListener("click", function () {
      Array.from(negatives).forEach(function (id) { mark(id, false); });
      update();
    });

    form.querySelector("[data-find-similar]").addEventListener("click", function () {
      // videos (data-kind on the host's tile) are never searched with: leave them out
      var videos = new Set(boxes().filter(function (box) {
        var tile = box.closest(".tile");
        return tile && tile.dataset.kind === "video";
      }).map(function (box) { return box.value; }));
      var ids = selected().filter(function (id) { return !negatives.has(id) && !videos.has(id); });
      if (!ids.length) { error.textContent = form.dataset.labelEmpty; return; }
      // one id= per image, each whole: a host's key may hold a comma
      var query = new URLSearchParams();
      ids.forEach(function (id) { query.append("id", id); });
      negatives.forEach(function (id) { query.append("not_id", id); });
      window.location.assign(form.dataset.selectionUrl + "?" + query.toString());
    });

    var diverse = form.querySelector("[data-pick-diverse]");
    if (diverse) diverse.addEventListener("click", function () {
      var ids = selected();
      if (ids.length < 2) { error.textContent = form.dataset.labelEmptyDiverse; return; }
      var query = new URLSearchParams();
      ids.forEach(function (id) { query.append("id", id); });
      query.set("count", String(Math.min(20, ids.length)));
      window.location.assign(form.dataset.diverseUrl + "?" + query.toString());
    });

    // Enter in an action's own field runs that action, not the first one of the form.
    form.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || event.target.tagName !== "INPUT") return;
      var button = event.target.closest(".select-toolbar__action");
      button = button && button.querySelector("button[type=submit]");
      if (button) { event.preventDefault(); button.click(); }
    });

    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!selected().length) {
        event.preventDefault();
        error.textContent = form.dataset.labelEmpty;
        return;
      }
      if (submitter && submitter.hasAttribute("data-confirm") && confirmInput.value !== "1") {
        event.preventDefault();
        pending = submitter;
        var n = selected().length;
        form.querySelector("[data-confirm-text]").textContent = n === 1
          ? form.dataset.labelConfirmOne : format(form.dataset.labelConfirmMany, n);
        dialog.showModal();
        return;
      }
      if (submitter && submitter.hasAttribute("data-download")) {
        confirmInput.value = "";  // a download keeps the page: nothing to reset after it
      }
    });
    form.querySelector("[data-confirm-cancel]").addEventListener("click", function () {
      pending = null;
      dialog.close();
    });
    form.querySelector("[data-confirm-ok]").addEventListener("click", function () {
      var button = pending;
      pending = null;
      dialog.close();
      if (!button) return;
      confirmInput.value = "1";
      form.requestSubmit(button);
      confirmInput.value = "";
    });

    // the page's own counter-examples (a selection search with &not=) stay marked, so
    // refining the search keeps them
    JSON.parse(form.dataset.negatives || "[]").forEach(function (id) {
      if (id) mark(String(id), true);
    });
    update();
  }

  function start() {
    var form = document.querySelector("[data-select-toolbar]");
    if (form) init(form);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
