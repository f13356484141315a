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
  function open(button, focusFirst) {
    closeAll(button);
    var menu = menuOf(button);
    if (!menu) return;
    button.setAttribute("aria-expanded", "true");
    menu.hidden = false;
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
    if (!event.target.closest('[role="menu"]')) closeAll(null);
  });

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
    error.hidden = !data.error;
    error.textContent = data.error || "";
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
          var busy = !data || data.state === "computing";
          timer = setTimeout(tick, busy ? 1500 : 10000);
        })
        .catch(function () { timer = setTimeout(tick, 5000); });
    }
    document.addEventListener("similarity:changed", tick);
    tick();
  }

  function pollNotifications(box) {
    var url = box.dataset.notificationsUrl;
    var badge = box.querySelector("[data-unread-count]");
    function tick() {
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && badge) { badge.textContent = data.unread; badge.hidden = !data.unread; }
        })
        .finally(function () { setTimeout(tick, 15000); });
    }
    setTimeout(tick, 15000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-readiness-url]").forEach(pollReadiness);
    document.querySelectorAll("[data-notifications-url]").forEach(pollNotifications);
  });
})();
