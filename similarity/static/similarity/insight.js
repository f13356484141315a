// Insight pages: while the worker analyses a project, poll its progress and reload when done.
(function () {
  "use strict";
  const box = document.querySelector("[data-insight-status]");
  if (!box) return;
  const url = box.getAttribute("data-insight-status");
  const message = box.querySelector("[data-insight-message]");
  const bar = box.querySelector("progress");
  async function poll() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const status = await response.json();
        if (status.ready) { window.location.reload(); return; }
        if (message) message.textContent = status.message;
        if (bar) { bar.value = status.percent; bar.textContent = status.percent + "%"; }
      }
    } catch (error) { /* the next poll retries */ }
    window.setTimeout(poll, 3000);
  }
  window.setTimeout(poll, 2000);
})();
