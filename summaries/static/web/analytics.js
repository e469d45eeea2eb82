// The analytics page: totals from /api/analytics, per-minute charts from
// /api/analytics/timeline, drawn as SVG by hand (no chart library).
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var MINUTES = 60;
  var REFRESH_MS = 10000;
  var last = null;

  var $ = function (id) { return document.getElementById(id); };

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var scaled = value / step;
    return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * step;
  }

  function clock(epochSeconds) {
    var d = new Date(epochSeconds * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function duration(msValue) {
    return msValue < 1000 ? Math.round(msValue) + " ms" : (msValue / 1000).toFixed(1) + " s";
  }

  // A frame: the svg, the plot area, y grid lines with labels, x time labels.
  function frame(container, minutes, max, format) {
    container.textContent = "";
    var width = Math.max(280, container.clientWidth), height = container.clientHeight || 220;
    var pad = { left: 44, right: 8, top: 10, bottom: 24 };
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none" }, container);
    var plot = { x: pad.left, y: pad.top, w: width - pad.left - pad.right, h: height - pad.top - pad.bottom };
    for (var i = 0; i <= 4; i++) {
      var y = plot.y + plot.h - (plot.h * i) / 4;
      el("line", { x1: plot.x, x2: plot.x + plot.w, y1: y, y2: y, "class": "grid" }, svg);
      el("text", { x: plot.x - 8, y: y + 4, "text-anchor": "end", "class": "axis-label" }, svg)
        .textContent = format((max * i) / 4);
    }
    var ticks = width < 480 ? 3 : 6;
    for (var t = 0; t <= ticks; t++) {
      var index = Math.round(((minutes.length - 1) * t) / ticks);
      var x = plot.x + (plot.w * (index + 0.5)) / minutes.length;
      el("text", { x: x, y: height - 6, "text-anchor": t === 0 ? "start" : t === ticks ? "end" : "middle",
                   "class": "axis-label" }, svg).textContent = clock(minutes[index].minute);
    }
    return { svg: svg, plot: plot };
  }

  function drawRequests(minutes) {
    var container = $("chart-requests");
    // Whole numbers on the axis: a multiple of its four steps.
    var peak = Math.max.apply(null, minutes.map(function (m) { return m.hit + m.miss + m.joined; }));
    var max = Math.max(4, Math.ceil(niceMax(peak) / 4) * 4);
    var f = frame(container, minutes, max, function (v) { return String(Math.round(v)); });
    var slot = f.plot.w / minutes.length, bar = Math.max(1, slot * 0.7);
    var drawn = 0;
    minutes.forEach(function (m, i) {
      var x = f.plot.x + slot * i + (slot - bar) / 2;
      var base = f.plot.y + f.plot.h;
      var misses = m.miss + m.joined;
      [["bar-miss", misses], ["bar-hit", m.hit]].forEach(function (part) {
        if (part[1] <= 0) return;
        var h = (f.plot.h * part[1]) / max;
        base -= h;
        var rect = el("rect", { x: x, y: base, width: bar, height: h, rx: Math.min(2, bar / 2), "class": part[0] }, f.svg);
        el("title", {}, rect).textContent = clock(m.minute) + ": " + m.hit + " hits, " + misses + " misses";
        drawn++;
      });
    });
    if (!drawn) empty(f, "No submissions in the last hour yet");
  }

  function drawProcessing(minutes) {
    var container = $("chart-processing");
    var points = [];
    minutes.forEach(function (m, i) { if (m.completed > 0) points.push([i, m.ms / m.completed]); });
    var max = niceMax(Math.max.apply(null, [0].concat(points.map(function (p) { return p[1]; }))));
    var f = frame(container, minutes, max, duration);
    if (!points.length) { empty(f, "No completed jobs in the last hour yet"); return; }
    var slot = f.plot.w / minutes.length;
    var xy = points.map(function (p) {
      return [f.plot.x + slot * (p[0] + 0.5), f.plot.y + f.plot.h - (f.plot.h * p[1]) / max];
    });
    var line = xy.map(function (p, i) { return (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1); }).join(" ");
    var bottom = f.plot.y + f.plot.h;
    el("path", { d: line + " L" + xy[xy.length - 1][0].toFixed(1) + " " + bottom + " L" + xy[0][0].toFixed(1) + " " + bottom + " Z",
                 "class": "area" }, f.svg);
    el("path", { d: line, "class": "line" }, f.svg);
    xy.forEach(function (p, i) {
      var dot = el("circle", { cx: p[0], cy: p[1], r: 3, "class": "dot" }, f.svg);
      el("title", {}, dot).textContent = clock(minutes[points[i][0]].minute) + ": " + duration(points[i][1]);
    });
  }

  function empty(f, text) {
    el("text", { x: f.plot.x + f.plot.w / 2, y: f.plot.y + f.plot.h / 2, "text-anchor": "middle", "class": "empty" }, f.svg)
      .textContent = text;
  }

  // Money: small amounts keep their significant digits ($0.000412), larger
  // ones two decimals.
  function usd(value) {
    if (!value) return "$0";
    if (value < 0.01) return "$" + value.toPrecision(3);
    return "$" + value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function row(id, calls, tokens, money) {
    var cells = $(id).querySelectorAll("td");
    cells[0].textContent = calls === null ? "–" : calls.toLocaleString();
    cells[1].textContent = tokens === null ? "–" : tokens.toLocaleString();
    cells[2].textContent = usd(money);
  }

  function cost(a) {
    var spent = a.ai_spent, saved = a.ai_saved;
    $("k-spent").textContent = usd(spent.usd);
    $("k-saved-usd").textContent = usd(a.ai_cost_saved);
    row("cost-spent", spent.calls, spent.input_tokens + spent.output_tokens, spent.usd);
    ["cache", "dedup", "near"].forEach(function (cause) {
      var s = saved[cause] || { calls: 0, tokens: 0, usd: 0 };
      row("saved-" + cause, s.calls, s.tokens, s.usd);
    });
    row("saved-batch", null, null, (saved.batch || { usd: 0 }).usd);
    $("cost-share").textContent = Math.round(a.ai_saved_share * 100) + "% of the cost saved";
    $("cost-note").textContent = spent.estimated_tokens ?
      spent.estimated_tokens.toLocaleString() + " of the tokens spent are estimated (the provider reported none)." :
      "Tokens as the provider reported them.";
  }

  function tiles(a) {
    $("k-requests").textContent = a.total_requests.toLocaleString();
    $("k-ratio").textContent = Math.round(a.hit_ratio * 100) + "%";
    $("k-saved").textContent = a.ai_calls_saved.toLocaleString();
    $("k-p50").textContent = a.completed_jobs ? duration(a.p50_processing_time_ms) : "–";
    $("k-p95").textContent = a.completed_jobs ? duration(a.p95_processing_time_ms) : "–";
    $("k-failures").textContent = a.failed_jobs ?
      a.failed_jobs.toLocaleString() + " (" + (a.failure_rate * 100).toFixed(1) + "%)" : "0";
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw { status: r.status, body: body };
        return body;
      });
    });
  }

  function load() {
    Promise.all([getJson("/api/analytics"), getJson("/api/analytics/timeline?minutes=" + MINUTES)])
      .then(function (both) {
        $("error").hidden = true;
        last = both[1].minutes;
        tiles(both[0]);
        cost(both[0]);
        drawRequests(last);
        drawProcessing(last);
        document.body.dataset.loaded = "true";
        $("updated").textContent = "Updated " + clock(Date.now() / 1000) + ", every 10 s.";
      })
      .catch(function (problem) {
        $("error-title").textContent = problem && problem.status === 503 ?
          "Analytics are unavailable right now" : "Could not load the analytics";
        $("error-text").textContent = (problem && problem.body && problem.body.error) ||
          "SmartCache could not be reached. Retrying in a few seconds.";
        $("error").hidden = false;
      });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { if (last) { drawRequests(last); drawProcessing(last); } }, 150);
  });
  load();
  setInterval(load, REFRESH_MS);
})();
