// Project map: every image as a dot on a 2-D canvas (PCA positions computed by the worker).
// Drawn into one ImageData buffer per frame (no per-point DOM nodes, no per-point canvas
// calls), so pan and zoom stay smooth at 100,000 points; thumbnails only for the few
// points in view at high zoom. Lasso or box selection opens "Find similar to selection".
(function () {
  "use strict";
  var root = document.querySelector("[data-map]");
  if (!root) return;
  var canvas = root.querySelector("canvas");
  var ctx = canvas.getContext("2d");
  var PALETTE = [0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2,
    0x17becf, 0xbcbd22, 0x7f7f7f];
  var RAMP = [[44, 123, 182], [171, 217, 233], [253, 174, 97], [215, 25, 28]];
  var THUMB_LIMIT = 60, THUMB_SIZE = 56;
  var maxSelection = +root.dataset.maxSelection || 100;

  var data = null, n = 0, xs, ys, groups, scores, colours;
  var selected = new Uint8Array(0), selectedCount = 0;
  var view = { scale: 1, tx: 0, ty: 0 };
  var mode = "pan", colourBy = "group";
  var width = 0, height = 0, ratio = 1, image = null, pixels = null;
  var drag = null, path = [], pending = false;
  var thumbs = {}, thumbsLoading = false;
  var stats = { fetchMs: 0, firstPaintMs: 0, frames: 0, lastFrameMs: 0 };
  window.similarityMap = stats;

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function rgb(hex) { return [(hex >> 16) & 255, (hex >> 8) & 255, hex & 255]; }
  function packed(c) { return (255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0]; }  // ABGR (little-endian RGBA)
  function ramp(t) {
    t = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
    var i = Math.min(RAMP.length - 2, Math.floor(t)), f = t - i;
    return RAMP[i].map(function (v, k) { return Math.round(v + (RAMP[i + 1][k] - v) * f); });
  }

  function computeColours() {
    colours = new Uint32Array(n);
    if (colourBy === "score") {
      var low = Infinity, high = -Infinity, i;
      for (i = 0; i < n; i++) if (!isNaN(scores[i])) { low = Math.min(low, scores[i]); high = Math.max(high, scores[i]); }
      var span = high - low || 1;
      for (i = 0; i < n; i++) colours[i] = packed(ramp(isNaN(scores[i]) ? 0 : (scores[i] - low) / span));
    } else {
      for (var j = 0; j < n; j++) {
        colours[j] = packed(groups[j] < 0 ? [150, 150, 150] : rgb(PALETTE[groups[j] % PALETTE.length]));
      }
    }
    legend();
  }

  function legend() {
    var box = root.querySelector("[data-map-legend]");
    box.textContent = "";
    if (colourBy === "score") {
      var item = document.createElement("span");
      item.append(root.dataset.labelScoreLow + " ");
      var bar = document.createElement("i");
      bar.className = "similarity-map__gradient";
      item.append(bar, " " + root.dataset.labelScoreHigh);
      box.append(item);
      return;
    }
    var counts = {};
    for (var i = 0; i < n; i++) counts[groups[i]] = (counts[groups[i]] || 0) + 1;
    var entries = data.groups.map(function (g, index) { return [index, g.label]; });
    if (counts[-1]) entries.push([-1, root.dataset.labelNoGroup]);
    entries.forEach(function (entry) {
      if (!counts[entry[0]]) return;
      var span = document.createElement("span");
      var swatch = document.createElement("i");
      swatch.className = "similarity-map__swatch";
      var c = entry[0] < 0 ? [150, 150, 150] : rgb(PALETTE[entry[0] % PALETTE.length]);
      swatch.style.background = "rgb(" + c.join(",") + ")";
      span.append(swatch, entry[1] + " (" + counts[entry[0]].toLocaleString() + ")");
      box.append(span);
    });
  }

  function resize() {
    ratio = window.devicePixelRatio || 1;
    var box = canvas.getBoundingClientRect();
    width = Math.max(1, Math.round(box.width * ratio));
    height = Math.max(1, Math.round(box.height * ratio));
    canvas.width = width;
    canvas.height = height;
    image = ctx.createImageData(width, height);
    pixels = new Uint32Array(image.data.buffer);
  }

  function fit() {
    var margin = 0.05, size = Math.min(width, height);
    view.scale = size * (1 - 2 * margin);
    view.tx = (width - view.scale) / 2;
    view.ty = (height - view.scale) / 2;
  }

  function screenX(i) { return xs[i] * view.scale + view.tx; }
  function screenY(i) { return (1 - ys[i]) * view.scale + view.ty; }

  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(draw);
  }

  function draw() {
    pending = false;
    if (!data) return;
    var started = performance.now();
    pixels.fill(0xffffffff);
    var dot = view.scale > 8 * Math.min(width, height) ? 3 : 2;
    var visible = [], i, x, y, dx, dy, c, row;
    for (i = 0; i < n; i++) {
      x = (xs[i] * view.scale + view.tx) | 0;
      y = ((1 - ys[i]) * view.scale + view.ty) | 0;
      if (x < 0 || y < 0 || x >= width - dot || y >= height - dot) continue;
      if (visible.length <= THUMB_LIMIT) visible.push(i);
      c = selected[i] ? 0xff000000 : colours[i];
      for (dy = 0; dy < dot; dy++) {
        row = (y + dy) * width + x;
        for (dx = 0; dx < dot; dx++) pixels[row + dx] = c;
      }
    }
    ctx.putImageData(image, 0, 0);
    if (visible.length <= THUMB_LIMIT && visible.length) drawThumbnails(visible);
    drawPath();
    stats.frames++;
    stats.lastFrameMs = performance.now() - started;
    if (!stats.firstPaintMs) {
      stats.firstPaintMs = performance.now();
      root.dataset.firstPaint = stats.firstPaintMs.toFixed(0);
      root.querySelector("[data-map-loading]").hidden = true;
    }
    root.dataset.frames = stats.frames;
  }

  function drawThumbnails(visible) {
    var missing = visible.filter(function (i) { return !(data.ids[i] in thumbs); });
    if (missing.length && !thumbsLoading) loadThumbnails(missing);
    var size = THUMB_SIZE * ratio;
    visible.forEach(function (i) {
      var picture = thumbs[data.ids[i]];
      if (!picture || !picture.complete || !picture.naturalWidth) return;
      var x = screenX(i) - size / 2, y = screenY(i) - size / 2;
      ctx.drawImage(picture, x, y, size, size);
      ctx.lineWidth = 2 * ratio;
      ctx.strokeStyle = selected[i] ? "#000" : "#" + (colours[i] & 0xffffff).toString(16).padStart(6, "0").replace(/(..)(..)(..)/, "$3$2$1");
      ctx.strokeRect(x, y, size, size);
    });
  }

  function loadThumbnails(indexes) {
    thumbsLoading = true;
    var ids = indexes.slice(0, THUMB_LIMIT).map(function (i) { return data.ids[i]; });
    ids.forEach(function (id) { thumbs[id] = null; });
    var query = new URLSearchParams();
    ids.forEach(function (id) { query.append("id", id); });
    fetch(root.dataset.thumbsUrl + "?" + query.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { thumbnails: [] }; })
      .then(function (body) {
        body.thumbnails.forEach(function (t) {
          var picture = new Image();
          picture.alt = t.label;
          picture.onload = schedule;
          picture.src = t.url;
          thumbs[t.id] = picture;
        });
      })
      .finally(function () { thumbsLoading = false; schedule(); });
  }

  function drawPath() {
    if (!path.length) return;
    ctx.save();
    ctx.lineWidth = 2 * ratio;
    ctx.strokeStyle = "#5b21b6";
    ctx.fillStyle = "rgba(124, 58, 237, 0.12)";
    ctx.beginPath();
    if (mode === "box" && path.length > 1) {
      var a = path[0], b = path[path.length - 1];
      ctx.rect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
    } else {
      ctx.moveTo(path[0][0], path[0][1]);
      for (var i = 1; i < path.length; i++) ctx.lineTo(path[i][0], path[i][1]);
      ctx.closePath();
    }
    ctx.fill();
    ctx.stroke();
    ctx.restore();
  }

  function point(event) {
    var box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * ratio, (event.clientY - box.top) * ratio];
  }

  function zoomAt(factor, cx, cy) {
    view.tx = cx - (cx - view.tx) * factor;
    view.ty = cy - (cy - view.ty) * factor;
    view.scale *= factor;
    schedule();
  }

  function inside(polygon, x, y) {
    var hit = false;
    for (var i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
      var xi = polygon[i][0], yi = polygon[i][1], xj = polygon[j][0], yj = polygon[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) hit = !hit;
    }
    return hit;
  }

  function select(shape) {
    selected = new Uint8Array(n);
    selectedCount = 0;
    var i, x, y;
    if (mode === "box") {
      var a = shape[0], b = shape[shape.length - 1];
      var x0 = Math.min(a[0], b[0]), x1 = Math.max(a[0], b[0]);
      var y0 = Math.min(a[1], b[1]), y1 = Math.max(a[1], b[1]);
      for (i = 0; i < n; i++) {
        x = screenX(i); y = screenY(i);
        if (x >= x0 && x <= x1 && y >= y0 && y <= y1) { selected[i] = 1; selectedCount++; }
      }
    } else if (shape.length > 2) {
      for (i = 0; i < n; i++) {
        if (inside(shape, screenX(i), screenY(i))) { selected[i] = 1; selectedCount++; }
      }
    }
    showSelection();
  }

  function showSelection() {
    var count = root.querySelector("[data-selection-count]");
    var link = root.querySelector("[data-selection-link]");
    var clear = root.querySelector("[data-selection-clear]");
    var note = root.querySelector("[data-selection-note]");
    link.hidden = clear.hidden = !selectedCount;
    note.hidden = selectedCount <= maxSelection;
    if (!selectedCount) { count.textContent = root.dataset.labelNone; schedule(); return; }
    count.textContent = format(root.dataset.labelSelected, { count: selectedCount.toLocaleString() });
    note.textContent = format(root.dataset.labelCapped, { max: maxSelection });
    // the most unusual first: the selection's odd ones are what a reviewer looks for
    var chosen = [];
    for (var i = 0; i < n; i++) if (selected[i]) chosen.push(i);
    chosen.sort(function (a, b) { return (scores[b] || 0) - (scores[a] || 0); });
    var ids = chosen.slice(0, maxSelection).map(function (i) { return data.ids[i]; });
    var query = new URLSearchParams();
    ids.forEach(function (id) { query.append("id", id); });
    link.href = root.dataset.selectionUrl + "?" + query.toString();
    schedule();
  }

  function setMode(next) {
    mode = next;
    root.dataset.mode = next;
    root.querySelectorAll("[data-mode]").forEach(function (b) {
      if (b.tagName === "BUTTON") b.setAttribute("aria-pressed", String(b.dataset.mode === next));
    });
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (!data) return;
    canvas.setPointerCapture(event.pointerId);
    var p = point(event);
    drag = { x: p[0], y: p[1], tx: view.tx, ty: view.ty };
    path = mode === "pan" ? [] : [p];
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drag) return;
    var p = point(event);
    if (mode === "pan") {
      view.tx = drag.tx + p[0] - drag.x;
      view.ty = drag.ty + p[1] - drag.y;
    } else {
      path.push(p);
    }
    schedule();
  });
  function finish() {
    if (!drag) return;
    if (mode !== "pan" && path.length > 1) select(path);
    drag = null;
    path = [];
    schedule();
  }
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    var p = point(event);
    zoomAt(Math.exp(-event.deltaY * 0.0015), p[0], p[1]);
  }, { passive: false });
  canvas.addEventListener("keydown", function (event) {
    var step = 40 * ratio, handled = true;
    if (event.key === "ArrowLeft") view.tx += step;
    else if (event.key === "ArrowRight") view.tx -= step;
    else if (event.key === "ArrowUp") view.ty += step;
    else if (event.key === "ArrowDown") view.ty -= step;
    else if (event.key === "+" || event.key === "=") zoomAt(1.5, width / 2, height / 2);
    else if (event.key === "-") zoomAt(1 / 1.5, width / 2, height / 2);
    else handled = false;
    if (handled) { event.preventDefault(); schedule(); }
  });
  root.querySelectorAll("button[data-mode]").forEach(function (button) {
    button.addEventListener("click", function () { setMode(button.dataset.mode); });
  });
  root.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (button.dataset.zoom === "reset") { fit(); schedule(); return; }
      zoomAt(button.dataset.zoom === "in" ? 2 : 0.5, width / 2, height / 2);
    });
  });
  root.querySelector("[data-selection-clear]").addEventListener("click", function () {
    selected = new Uint8Array(n);
    selectedCount = 0;
    showSelection();
  });
  var colourSelect = root.querySelector("[data-colour]");
  colourSelect.addEventListener("change", function () {
    colourBy = colourSelect.value;
    computeColours();
    schedule();
  });
  window.addEventListener("resize", function () {
    if (!data) return;
    var old = width;
    resize();
    zoomAt(width / old, 0, 0);
  });

  var fetchStarted = performance.now();
  fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) { return r.json(); })
    .then(function (body) {
      stats.fetchMs = performance.now() - fetchStarted;
      data = body;
      n = body.count;
      xs = Float32Array.from(body.x);
      ys = Float32Array.from(body.y);
      groups = Int16Array.from(body.group);
      scores = Float32Array.from(body.score, function (s) { return s == null ? NaN : s; });
      selected = new Uint8Array(n);
      colourBy = colourSelect.value;
      computeColours();
      var names = body.groups.map(function (g) { return g.label; }).join(", ");
      var text = format(root.dataset.labelSummary, { count: n.toLocaleString() });
      if (names) text += " " + format(root.dataset.labelGroups, { names: names });
      root.querySelector("[data-map-summary]").prepend(text + " ");
      canvas.setAttribute("aria-label", text);
      resize();
      fit();
      draw();
    });
})();
