// The home page: submit, then follow the job live (Server-Sent Events on
// /api/jobs/<id>/events, polling /api/status/<id> where a stream cannot be
// had), then show the result. Plain JavaScript, no build step.
(function () {
  "use strict";

  var EXAMPLE = "The city council approved a plan on Tuesday to turn the old harbour " +
    "warehouses into a public library and a covered market. Construction starts next spring " +
    "and should take two years, paid for by a regional grant and the sale of two unused car " +
    "parks. Local traders welcomed the market, while some residents asked for more parking " +
    "near the waterfront.";
  var STAGES = ["queued", "fetching", "extracting", "summarizing", "done"];
  var LABELS = {
    queued: "Queued", requeued: "Queued", fetching: "Fetching the page",
    extracting: "Reading the article", summarizing: "Summarising", retrying: "Retrying",
    waiting: "Waiting for the AI", done: "Done", failed: "Failed"
  };
  var ERRORS = {
    400: "That input can't be summarised",
    404: "That job no longer exists",
    413: "That's too long to summarise",
    415: "The request was not understood",
    429: "Too many requests",
    503: "SmartCache is busy or unavailable"
  };

  var $ = function (id) { return document.getElementById(id); };
  var form = $("submit-form"), input = $("input"), button = $("submit");
  var result = $("result");
  var current = null; // {id, started, source, timer}

  function setText(id, text) { $(id).textContent = text; }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value < 1000 ? Math.round(value) + " ms" : (value / 1000).toFixed(1) + " s";
  }

  function showError(status, body, retryAfter) {
    var box = $("error");
    var title = ERRORS[status] || (status ? "Something went wrong (" + status + ")" :
      "SmartCache could not be reached");
    var text = (body && body.error) ? body.error : "Please try again in a moment.";
    text = text.charAt(0).toUpperCase() + text.slice(1);
    if (!/[.!?]$/.test(text)) text += ".";
    if (retryAfter) text += " Try again in " + retryAfter + " s.";
    box.className = "alert" + (status === 429 || status === 503 ? " alert-warn" : "");
    box.dataset.status = String(status || 0);
    setText("error-title", title);
    setText("error-text", text);
    box.hidden = false;
  }

  function hideError() { $("error").hidden = true; }

  function stop() {
    if (!current) return;
    if (current.source) current.source.close();
    if (current.timer) clearTimeout(current.timer);
    current.source = null;
    current.timer = null;
  }

  function busy(on) {
    button.disabled = on;
    button.querySelector(".button-label").textContent = on ? "Summarising…" : "Summarise";
  }

  function renderStage(stage, status) {
    var index = STAGES.indexOf(stage);
    if (stage === "retrying" || stage === "waiting" || stage === "requeued") index = 0;
    if (status === "processing" && index < 1) index = 1;
    if (status === "completed") index = STAGES.length - 1;
    var items = $("stages").querySelectorAll("li");
    for (var i = 0; i < items.length; i++) {
      var at = STAGES.indexOf(items[i].dataset.stage);
      var finished = status === "completed" || (status !== "failed" && at < index);
      items[i].className = (items[i].classList.contains("url-only") ? "url-only " : "") +
        (finished ? "is-done" : (at === index ? "is-current" : ""));
    }
  }

  function renderPill(status, stage) {
    var pill = $("state");
    var label = LABELS[stage] || LABELS[status] || status;
    var kind = "pill-pending";
    if (status === "completed") { kind = "pill-done"; label = "Done"; }
    else if (status === "failed") { kind = "pill-failed"; label = "Failed"; }
    else if (stage === "waiting" || stage === "retrying") kind = "pill-waiting";
    pill.className = "pill " + kind;
    pill.textContent = label;
    result.dataset.status = status;
    result.dataset.stage = stage || "";
  }

  function progressNote(body) {
    if (body.status === "pending") {
      var parts = [];
      if (body.queue_position) parts.push(body.queue_position === 1 ? "Next in line" :
        "Position " + body.queue_position + " in the queue");
      if (body.eta_seconds !== undefined) parts.push("about " + Math.max(1, body.eta_seconds) + " s to go");
      if (body.last_error) parts.push(body.last_error);
      return parts.join(" · ") || "Waiting for a worker…";
    }
    if (body.status === "processing") {
      if (body.parts && body.parts.total) {  // a long document, summarised in parts
        return "Part " + Math.min(body.parts.done + 1, body.parts.total) + " of " +
          body.parts.total + (body.parts.done >= body.parts.total ? " done; putting it together…" : "");
      }
      return body.eta_seconds !== undefined ?
        (body.eta_seconds > 0 ? "About " + body.eta_seconds + " s to go" : "Any moment now…") :
        "Working on it…";
    }
    return "";
  }

  function renderState(body) {
    renderPill(body.status, body.stage);
    renderStage(body.stage, body.status);
    setText("progress-note", progressNote(body));
  }

  function renderFinal(body, answeredMs) {
    stop();
    busy(false);
    result.classList.add("is-finished");
    renderState(body);
    $("cached-badge").hidden = !body.cached;
    if (body.status === "completed") {
      setText("summary", body.summary);
      var tags = $("tags");
      tags.textContent = "";
      (body.tags || []).forEach(function (tag) {
        var li = document.createElement("li");
        li.textContent = tag;
        tags.appendChild(li);
      });
      $("summary-block").hidden = false;
      $("job-error").hidden = true;
    } else {
      result.classList.add("is-failed");
      $("summary-block").hidden = true;
      var error = $("job-error");
      error.textContent = (body.error || "The job failed.") + (body.code ? " (" + body.code + ")" : "");
      error.hidden = false;
    }
    setText("t-answer", ms(answeredMs));
    setText("t-processing", body.cached && body.duration_ms === undefined ? "from cache" : ms(body.duration_ms));
    $("timings").hidden = false;
  }

  function startResult(job, kind) {
    result.hidden = false;
    result.className = "card result kind-" + kind;
    $("cached-badge").hidden = true;
    $("summary-block").hidden = true;
    $("job-error").hidden = true;
    $("timings").hidden = true;
    setText("job-id", "job " + job.slice(0, 8));
    result.dataset.jobId = job;
  }

  function poll(job, started) {
    current.timer = setTimeout(function () {
      fetch("/api/status/" + job, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (pair) {
          if (!current || current.id !== job) return;
          var body = pair[1];
          if (pair[0] !== 200) { busy(false); showError(pair[0], body); return; }
          if (body.status === "completed" || body.status === "failed") {
            renderFinal(body, performance.now() - started);
          } else {
            renderState(body);
            poll(job, started);
          }
        })
        .catch(function () { if (current && current.id === job) poll(job, started); });
    }, 1000);
  }

  function follow(job, started) {
    setText("t-channel", "live");
    if (!window.EventSource) { setText("t-channel", "polling"); poll(job, started); return; }
    var source = new EventSource("/api/jobs/" + job + "/events");
    current.source = source;
    source.addEventListener("status", function (e) {
      var body = JSON.parse(e.data);
      renderState(body);
    });
    source.addEventListener("result", function (e) {
      renderFinal(JSON.parse(e.data), performance.now() - started);
    });
    source.onerror = function () {
      // The stream ended or was refused (its process is full): the browser
      // reconnects by itself unless it was refused; then poll.
      if (source.readyState === EventSource.CLOSED && current && current.id === job) {
        current.source = null;
        setText("t-channel", "polling");
        poll(job, started);
      }
    };
  }

  // A document to upload (file picker or drag and drop): sent as
  // multipart/form-data instead of the text box.
  var chosen = null;
  function choose(file) {
    chosen = file || null;
    $("file-name").textContent = chosen ? chosen.name : "";
    $("file-name").hidden = !chosen;
    $("file-clear").hidden = !chosen;
    $("file-hint").hidden = !!chosen;
    input.disabled = !!chosen;
    if (!chosen) $("file").value = "";
  }
  $("file").addEventListener("change", function () { choose($("file").files[0]); });
  $("file-clear").addEventListener("click", function () { choose(null); });
  var zone = $("dropzone");
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("is-over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("is-over"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });

  function request(text) {
    if (chosen) {
      var data = new FormData();
      data.append("file", chosen);
      data.append("refresh", $("refresh").checked ? "true" : "false");
      data.append("style", $("style").value);
      data.append("length", $("length").value);
      return { headers: { Accept: "application/json" }, body: data };
    }
    // The form (style, length) only when not the default, so a plain request
    // stays plain (answered by the fast path when cached).
    var body = { input: text, refresh: $("refresh").checked };
    if ($("style").value !== "prose") body.style = $("style").value;
    if ($("length").value !== "short") body.length = $("length").value;
    return { headers: { "Content-Type": "application/json", Accept: "application/json" },
             body: JSON.stringify(body) };
  }

  function submit(event) {
    event.preventDefault();
    var text = input.value.trim();
    hideError();
    if (!text && !chosen) {
      showError(400, { error: "paste some text or a link, or choose a file, first." });
      input.focus();
      return;
    }
    stop();
    busy(true);
    var started = performance.now();
    var kind = chosen ? "document" : /^https?:\/\//i.test(text) ? "url" : "text";
    var sent = request(text);
    fetch("/api/submit", {
      method: "POST",
      headers: sent.headers,
      body: sent.body
    }).then(function (r) {
      return r.text().then(function (raw) {
        var body = {};
        try { body = raw ? JSON.parse(raw) : {}; } catch (ignored) { body = {}; }
        return { status: r.status, body: body, retryAfter: r.headers.get("Retry-After") };
      });
    }).then(function (answer) {
      var body = answer.body;
      if (answer.status !== 200 && answer.status !== 202) {
        busy(false);
        showError(answer.status, body, answer.retryAfter);
        return;
      }
      current = { id: body.job_id, source: null, timer: null };
      startResult(body.job_id, kind);
      if (answer.status === 200) {
        setText("t-channel", "instant");
        renderFinal(body, performance.now() - started);
        return;
      }
      renderState({ status: "pending", stage: "queued" });
      follow(body.job_id, started);
    }).catch(function () {
      busy(false);
      showError(0, { error: "the network request failed. Check your connection and try again." });
    });
  }

  // No maxlength on the box: a long paste is not cut silently, the API's
  // 413 says what the limit is.
  var limit = Number(input.dataset.max) || 0;
  function count() {
    var n = input.value.length;
    var counter = $("counter");
    counter.textContent = n.toLocaleString() + (limit ? " / " + limit.toLocaleString() : "") +
      (n === 1 ? " character" : " characters");
    counter.classList.toggle("is-over", limit > 0 && n > limit);
  }

  form.addEventListener("submit", submit);
  input.addEventListener("input", count);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) form.requestSubmit();
  });
  $("example").addEventListener("click", function () {
    input.value = EXAMPLE;
    count();
    input.focus();
  });
  count();
})();
