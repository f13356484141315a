/* Moves each image's similarity actions (rendered by our index_results.html and
   chooser/results.html overrides below Wagtail's listing) into that image's grid tile or
   list row, in the image listing and in the image chooser. Runs again whenever
   Wagtail swaps in new results (search, filters, pagination, layout switch). */
(function () {
  'use strict';

  var script = document.currentScript;
  var nearUrl = script && script.getAttribute('data-near-url');
  var editMultipleUrl = script && script.getAttribute('data-edit-multiple-url');
  var checking = (script && script.getAttribute('data-near-checking')) || '';
  var NEAR_GIVE_UP_MS = 10 * 60 * 1000;

  /* The multiple uploader: each uploaded image's form posts to its edit-multiple URL; ask
     "near" for it until it is analysed, then show the near-duplicate warning above it. */
  function uploadedImageId(form) {
    if (!editMultipleUrl) return null;
    var prefix = editMultipleUrl.replace(/0\/$/, '');
    var action = form.getAttribute('action') || '';
    if (action.indexOf(prefix) !== 0) return null;
    var match = /^(\d+)\/$/.exec(action.slice(prefix.length));
    return match ? match[1] : null;
  }

  function watchUploads() {
    if (!nearUrl) return;
    document.querySelectorAll('#upload-list form[action]:not([data-similarity-near-watched])')
      .forEach(function (form) {
        var id = uploadedImageId(form);
        if (!id) return;
        form.setAttribute('data-similarity-near-watched', '');
        var live = document.createElement('div');
        live.className = 'similarity-near-live';
        live.setAttribute('aria-live', 'polite');
        live.setAttribute('data-similarity-near-for', id);
        live.textContent = checking;
        form.parentNode.insertBefore(live, form);
        var url = nearUrl.replace(/\/0\/near\/$/, '/' + encodeURIComponent(id) + '/near/');
        var started = Date.now();
        var delay = 1500;
        function poll() {
          fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
            .then(function (response) { return response.ok ? response.json() : null; })
            .then(function (answer) {
              if (!answer) { live.textContent = ''; return; }
              if (answer.state === 'done') {
                live.innerHTML = answer.html;  // our own template, escaped server-side
                live.setAttribute('data-state', 'done');
              } else if (answer.state === 'failed') {
                live.textContent = answer.reason;
                live.setAttribute('data-state', 'failed');
              } else if (Date.now() - started < NEAR_GIVE_UP_MS) {
                delay = Math.min(delay * 1.5, 10000);
                setTimeout(poll, delay);
              } else {
                live.textContent = '';
              }
            })
            .catch(function () { live.textContent = ''; });
        }
        setTimeout(poll, 500);
      });
  }

  function place() {
    var bars = document.querySelectorAll('[data-similarity-actions-for]:not([data-placed])');
    bars.forEach(function (bar) {
      var id = bar.getAttribute('data-similarity-actions-for');
      var checkbox = document.querySelector(
        'input[data-bulk-action-checkbox][data-object-id="' + CSS.escape(id) + '"]');
      if (!checkbox) return;
      var row = checkbox.closest('tr');
      var target = row ? row.querySelector('td.title-with-filename, td.title') || row.lastElementChild : checkbox.closest('li');
      if (!target) return;
      bar.setAttribute('data-placed', '');
      target.appendChild(bar);
    });
    // The image chooser (a modal in the same page): beside each tile's choice link, or
    // its checkbox when choosing several.
    var links = document.querySelectorAll('[data-similarity-chooser-for]:not([data-placed])');
    links.forEach(function (bar) {
      var results = bar.closest('#search-results') || document;
      var href = bar.getAttribute('data-similarity-chosen-url');
      var id = bar.getAttribute('data-similarity-chooser-for');
      var choice = Array.prototype.find.call(
        results.querySelectorAll('a[data-chooser-modal-choice]'),
        function (a) { return a.getAttribute('href') === href; }) ||
        results.querySelector('input[data-multiple-choice-select][value="' + CSS.escape(id) + '"]');
      if (!choice) return;
      var target = choice.closest('li') || choice.closest('td');
      if (!target) return;
      bar.setAttribute('data-placed', '');
      target.appendChild(bar);  // moved, not copied: the chooser's click handlers stay
    });
    document.querySelectorAll('[data-similarity-listing-actions]').forEach(function (section) {
      section.hidden = !section.querySelector('[data-similarity-actions-for]');
    });
  }

  function start() {
    place();
    watchUploads();
    new MutationObserver(function () { place(); watchUploads(); })
      .observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
