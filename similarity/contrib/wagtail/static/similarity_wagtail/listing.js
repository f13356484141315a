/* Moves each image's similarity actions (rendered by our index_results.html override
   below Wagtail's listing) into that image's grid tile or list row. Runs again whenever
   Wagtail swaps in new results (search, filters, pagination, layout switch). */
(function () {
  'use strict';

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
    document.querySelectorAll('[data-similarity-listing-actions]').forEach(function (section) {
      section.hidden = !section.querySelector('[data-similarity-actions-for]');
    });
  }

  function start() {
    place();
    new MutationObserver(place).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
