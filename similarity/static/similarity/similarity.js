/* Image similarity: "⋯" menus, the readiness icon and the notifications badge.
   Plain JavaScript, no dependencies; works without it (links stay links). */
(function () {
  "use strict";

  function menuOf(button) {
    return document.getElementById(button.getAttribute("aria-controls"));
  }
  function items(menu) {
    return Array.prototype.slice.call(
      menu.querySelectorAll('[role="menuitem"]:not([aria-disabled="true"])'));
  }
  function closeAll(except) {
    document.querySelectorAll("[data-menu-button][aria-expanded='true']").forEach(function (b) {
      if (b === except) return;
      b.setAttribute("aria-expanded", "false");
      var m = menuOf(b);
      if (m) m.hidden = true;
    });
  }
  function place(button, menu) {
    // A fixed-position menu (the notifications menu) opens beside its button, inside
    // the viewport, whatever scroll container the button sits in.
    if (getComputedStyle(menu).position !== "fixed") return;
    var box = button.getBoundingClientRect();
    var gap = 8, width = menu.offsetWidth, height = menu.offsetHeight;
    var left = box.right + gap;
    if (left + width > window.innerWidth - gap) left = Math.max(gap, box.left);
    var top = Math.max(gap, Math.min(box.top, window.innerHeight - height - gap));
    menu.style.left = left + "px";
    menu.style.top = top + "px";
  }
  function open(button, focusFirst) {
    closeAll(button);
    var menu = menuOf(button);
    if (!menu) return;
    button.setAttribute("aria-expanded", "true");
    menu.hidden = false;
    place(button, menu);
    if (focusFirst) { var first = items(menu)[0]; if (first) first.focus(); }
  }
  function close(button, refocus) {
    button.setAttribute("aria-expanded", "false");
    var menu = menuOf(button);
    if (menu) menu.hidden = true;
    if (refocus) button.focus();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-menu-button]");
    if (button) {
      event.preventDefault();
      if (button.getAttribute("aria-expanded") === "true") close(button, false);
      else open(button, event.detail === 0);  // keyboard "click" moves focus into the menu
      return;
    }
    var disabled = event.target.closest('[role="menuitem"][aria-disabled="true"]');
    if (disabled) { event.preventDefault(); return; }  // a disabled item says why; it does nothing
    if (!event.target.closest('[role="menu"]')) closeAll(null);
  });
  window.addEventListener("resize", function () { closeAll(null); });

  document.addEventListener("keydown", function (event) {
    var menu = event.target.closest('[role="menu"]');
    var button = event.target.closest("[data-menu-button]");
    if (button && (event.key === "ArrowDown" || event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      open(button, true);
      return;
    }
    if (!menu) { if (event.key === "Escape") closeAll(null); return; }
    var list = items(menu);
    var index = list.indexOf(document.activeElement);
    var owner = document.querySelector('[aria-controls="' + menu.id + '"]');
    if (event.key === "Escape") { event.preventDefault(); if (owner) close(owner, true); }
    else if (event.key === "ArrowDown") { event.preventDefault(); list[(index + 1) % list.length].focus(); }
    else if (event.key === "ArrowUp") { event.preventDefault(); list[(index - 1 + list.length) % list.length].focus(); }
    else if (event.key === "Home") { event.preventDefault(); list[0].focus(); }
    else if (event.key === "End") { event.preventDefault(); list[list.length - 1].focus(); }
    else if (event.key === "Tab" && owner) { close(owner, false); }
  });

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function renderReadiness(box, data) {
    box.dataset.state = data.state;
    var text = box.querySelector(".similarity-readiness__text");
    var bar = box.querySelector(".similarity-readiness__bar");
    var failed = box.querySelector(".similarity-readiness__failed");
    var error = box.querySelector(".similarity-readiness__error");
    var label = box.dataset["label" + data.state.charAt(0).toUpperCase() + data.state.slice(1)];
    text.textContent = format(label || data.state, { done: data.embedded, total: data.total });
    bar.max = Math.max(1, data.total);
    bar.value = data.embedded;
    bar.hidden = data.state !== "computing";
    failed.hidden = !data.failed;
    failed.textContent = format(box.dataset.labelFailures, { count: data.failed });
    renderError(error, data);
    renderInsight(box, data);
    renderTextModel(box, data);
    setSearchAvailability(box, data);
  }

  // The text model's progress beside the image model's ("Text search: computing 40 of
  // 100"): image search never waits for it, so it is a note, not the icon's state.
  function renderTextModel(box, data) {
    var part = box.querySelector(".similarity-readiness__text-model");
    var text = data.text;
    if (!part || !text) return;
    part.dataset.textState = text.state;
    part.hidden = text.state !== "computing" && text.state !== "failed";
    part.title = text.error_summary || "";
    part.textContent = format(text.state === "failed" ? box.dataset.labelTextFailed
                                                      : box.dataset.labelTextComputing,
                              { done: text.embedded, total: text.total });
  }

  // The insight stage after embedding: "Duplicates and outliers: Analysing 4,000 of
  // 10,000", shown while the worker's insight task runs on a searchable project.
  function renderInsight(box, data) {
    var part = box.querySelector(".similarity-readiness__insight");
    var stage = data.insight;
    if (!part || !stage) return;
    part.dataset.insightState = stage.state;
    part.hidden = !(data.state === "ready" && stage.state === "analysing");
    part.querySelector("[data-insight-text]").textContent =
      format(box.dataset.labelInsight || "%(message)s", { message: stage.message });
    var bar = part.querySelector("progress");
    bar.max = Math.max(1, stage.total);
    bar.value = stage.analysed;
    bar.textContent = stage.percent + "%";
  }

  // Still working: embeddings being computed, or the insight stage after them.
  function busy(data) {
    if (!data || data.state === "computing") return true;
    if (data.text && data.text.state === "computing") return true;
    return data.state === "ready" && data.insight && data.insight.state !== "ready";
  }

  // A failure: one plain sentence (the first line: what happened, why, what to do)
  // shown as an error; anything after it (the technical detail) behind a disclosure.
  function renderError(error, data) {
    if (!error) return;
    var text = data.error || "";
    var lines = text.split("\n");
    var summary = data.error_summary || lines[0];
    var details = data.error_details != null ? data.error_details : lines.slice(1).join("\n").trim();
    error.hidden = !text;
    var sentence = error.querySelector("[data-error-summary]");
    var more = error.querySelector("details");
    if (sentence) sentence.textContent = summary;
    if (more) {
      more.hidden = !details;
      more.querySelector("pre").textContent = details;
    }
  }

  // Similarity Search menu items are disabled, with the reason, while the project on
  // this page cannot be searched (nothing embedded yet, or embedding failed).
  // The server says (unavailable_reason): the same answer the menus were rendered with.
  function setSearchAvailability(box, data) {
    var reason = data.unavailable_reason || "";
    document.querySelectorAll('[data-action^="similarity-"]').forEach(function (item) {
      if (item.dataset.kindReason) return;  // a video: disabled for good, with its own reason
      var note = item.querySelector("[data-availability-note]");
      if (reason) {
        item.setAttribute("aria-disabled", "true");
        item.classList.add("is-disabled");
        if (!note) {
          note = document.createElement("small");
          note.className = "menu-note";
          note.setAttribute("data-availability-note", "");
          item.appendChild(note);
        }
        note.textContent = reason;
      } else if (note) {
        item.removeAttribute("aria-disabled");
        item.classList.remove("is-disabled");
        note.remove();
      }
    });
  }

  // "just now" instead of "0 minutes ago" once the page has been open a while, too.
  function refreshTimes() {
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var seconds = (Date.now() - Date.parse(el.getAttribute("datetime"))) / 1000;
      if (seconds < 60) el.textContent = el.dataset.justNow || el.textContent;
    });
  }

  function pollReadiness(box) {
    var url = box.dataset.readinessUrl;
    if (!url) return;
    var timer = null;
    function tick() {
      clearTimeout(timer);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data) renderReadiness(box, data);
          timer = setTimeout(tick, busy(data) ? 1500 : 10000);
        })
        .catch(function () { timer = setTimeout(tick, 5000); });
    }
    document.addEventListener("similarity:changed", tick);
    tick();
  }

  // The dropdown's items, redrawn from the poll when anything in them changed (a batch's
  // notification is updated in place; a saved search's match arrives), so a new
  // "2 new images look like …" shows without a reload.
  function ago(iso, justNow) {
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    var steps = [[86400, "day"], [3600, "hour"], [60, "minute"]];
    for (var i = 0; i < steps.length; i++) {
      var n = Math.floor(seconds / steps[i][0]);
      if (n >= 1) { return n + " " + steps[i][1] + (n === 1 ? "" : "s") + " ago"; }
    }
    return justNow;
  }

  function drawNotifications(box, latest) {
    var menu = box.querySelector("[role=menu]");
    if (!menu) { return; }
    menu.querySelectorAll("[data-notification-item]").forEach(function (item) { item.remove(); });
    var empty = menu.querySelector("[data-notifications-empty]");
    if (empty && latest.length) { empty.remove(); }
    if (!empty && !latest.length) {
      empty = document.createElement("span");
      empty.className = "menu-item is-disabled";
      empty.setAttribute("role", "menuitem");
      empty.setAttribute("aria-disabled", "true");
      empty.setAttribute("data-notifications-empty", "");
      empty.textContent = box.dataset.emptyLabel || "No notifications";
      menu.insertBefore(empty, menu.firstElementChild);
    }
    var first = menu.firstElementChild;
    latest.forEach(function (n) {
      var item = document.createElement("a");
      item.setAttribute("role", "menuitem");
      item.setAttribute("tabindex", "-1");
      item.setAttribute("data-notification-item", "");
      item.setAttribute("data-notification-id", String(n.id) + "@" + n.updated);
      item.setAttribute("data-level", n.level);
      item.className = "menu-item level-" + n.level;
      item.href = n.url || "#";
      if (n.level === "error" || n.level === "warning") {
        var label = document.createElement("span");
        label.className = "level-label";
        label.textContent = n.level_label;
        item.append(label, " ");
      }
      item.append(n.message);
      var note = document.createElement("small");
      note.className = "menu-note";
      var time = document.createElement("time");
      time.setAttribute("datetime", n.updated);
      time.setAttribute("data-relative", "");
      time.setAttribute("data-just-now", box.dataset.justNow || "just now");
      time.textContent = ago(n.updated, box.dataset.justNow || "just now");
      note.append(time);
      item.append(note);
      menu.insertBefore(item, first);
    });
    refreshTimes();
  }

  function sameAsShown(box, latest) {  // the server rendered these already
    var shown = Array.prototype.map.call(box.querySelectorAll("[data-notification-item]"),
      function (item) { return item.getAttribute("data-notification-id"); });
    return shown.join(",") === latest.map(function (n) { return String(n.id) + "@" + n.updated; }).join(",");
  }

  function pollNotifications(box) {
    var url = box.dataset.notificationsUrl;
    var badge = box.querySelector("[data-unread-count]");
    var seen = null;  // the first answer redraws what the server rendered: cheap, and current
    var every = window.SIMILARITY_NOTIFICATIONS_POLL_MS || 15000;
    function tick() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          if (badge) { badge.textContent = data.unread; badge.hidden = !data.unread; }
          var now = JSON.stringify(data.latest.map(function (n) { return [n.id, n.updated, n.message]; }));
          // never under a keyboard user's focus: a menu being walked with the arrow keys
          // is redrawn at a later poll
          var menu = box.querySelector("[role=menu]");
          var walking = !menu.hidden && menu.contains(document.activeElement);
          if (now !== seen && !walking) {
            if (seen !== null || !sameAsShown(box, data.latest)) { drawNotifications(box, data.latest); }
            seen = now;
          }
        })
        .finally(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    // Menu items are reached with the arrow keys, not Tab (WAI-ARIA menu pattern).
    document.querySelectorAll('[role="menu"] [role="menuitem"]').forEach(function (item) {
      item.setAttribute("tabindex", "-1");
    });
    document.querySelectorAll("[data-testid=readiness]").forEach(function (box) {
      setSearchAvailability(box, { state: box.dataset.state,
        embedded: +box.dataset.embedded || 0, total: +box.dataset.total || 0 });
    });
    document.querySelectorAll("[data-readiness-url]").forEach(pollReadiness);
    document.querySelectorAll("[data-notifications-url]").forEach(pollNotifications);
    refreshTimes();
  });
})();
