/* The results pages' threshold: a range over the results' own scores that hides the
   results past it (below it in most-similar order, above it in least-similar order, so
   it always trims the far end), marks the largest drop between neighbouring scores, and
   fills "Save this search"'s notify field with the value. */
(function () {
  'use strict';

  function start() {
    var box = document.querySelector('[data-similarity-threshold]');
    var tiles = Array.prototype.slice.call(document.querySelectorAll('[data-similarity-result]'));
    if (!box || tiles.length < 2) return;
    var least = box.getAttribute('data-order') === 'least';
    var scores = tiles.map(function (tile) {
      var el = tile.querySelector('[data-similarity-score]');
      return el ? parseFloat(el.getAttribute('data-similarity-score')) : NaN;
    });
    if (scores.some(isNaN)) return;
    var range = box.querySelector('[data-threshold-range]');
    var output = box.querySelector('[data-threshold-value]');
    var shown = box.querySelector('[data-threshold-shown]');
    var low = Math.min.apply(null, scores);
    var high = Math.max.apply(null, scores);
    range.min = low.toFixed(3);
    range.max = high.toFixed(3);
    range.value = least ? range.max : range.min;  // everything shown at first

    // the largest drop between neighbours, in the page's order
    var drop = 0, at = -1;
    for (var i = 1; i < scores.length; i += 1) {
      var gap = Math.abs(scores[i - 1] - scores[i]);
      if (gap > drop) { drop = gap; at = i; }
    }
    if (at > 0) {
      tiles[at].classList.add('similarity-result--after-drop');
      tiles[at].setAttribute('data-largest-drop', '');
      var mark = document.createElement('span');
      mark.className = 'similarity-drop-marker';
      mark.textContent = box.getAttribute('data-drop-label') || 'Largest drop';
      tiles[at].insertBefore(mark, tiles[at].firstChild);
    }

    function apply(cut) {
      var count = 0;
      tiles.forEach(function (tile, index) {
        var keep = least ? scores[index] <= cut + 1e-9 : scores[index] >= cut - 1e-9;
        tile.hidden = !keep;
        if (keep) count += 1;
      });
      output.textContent = cut.toFixed(3);
      shown.textContent = count + ' / ' + tiles.length;
      var notify = document.querySelector('#similarity-save-threshold');
      if (notify) notify.value = cut.toFixed(2);
    }
    range.addEventListener('input', function () { apply(parseFloat(range.value)); });
    box.querySelector('[data-threshold-drop]').addEventListener('click', function () {
      if (at <= 0) return;
      // keep everything before the drop: the cut sits in the middle of the gap (exact,
      // not the range's step-rounded value)
      var cut = (scores[at - 1] + scores[at]) / 2;
      range.value = cut.toFixed(3);
      apply(cut);
    });
    box.hidden = false;
    apply(parseFloat(range.value));
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
