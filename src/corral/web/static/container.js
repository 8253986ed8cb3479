// Container page: the live log (tail, follow, auto-scroll) and the live resource charts, both read with fetch()
// from streaming UI routes. When a stream ends because the container stopped, it starts again once the live summary
// (re-rendered by htmx on every event) shows the container running.
(function () {
  "use strict";

  var MAX_LOG_CHARS = 400000;
  var RESTART_GAP_MS = 2000;

  // onOpen: the stream is connected (its headers came) before any output; a quiet container may send none for long.
  function streamText(url, controller, onText, onOpen) {
    return fetch(url, { signal: controller.signal, credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        return response.text().then(function (text) { throw new Error(text.trim() || "HTTP " + response.status); });
      }
      if (onOpen) onOpen();
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      function pump() {
        return reader.read().then(function (result) {
          if (result.done) {
            var rest = decoder.decode();
            if (rest) onText(rest);
            return;
          }
          onText(decoder.decode(result.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    });
  }

  function containerState() {
    var el = document.getElementById("container-state");
    return el ? el.getAttribute("data-state") : "";
  }

  function Stream(statusEl, start) {
    this.statusEl = statusEl;
    this.start = start;
    this.controller = null;
    this.active = false;
    this.startedAt = 0;
    this.quietText = "connected: no output yet";
  }
  Stream.prototype.status = function (text) { this.statusEl.textContent = text; };
  Stream.prototype.stop = function () {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.active = false;
  };
  Stream.prototype.run = function (url, onText, endText) {
    this.stop();
    var self = this, controller = new AbortController();
    this.controller = controller;
    this.active = true;
    this.startedAt = Date.now();
    var waiting = ["connecting…", this.quietText];
    this.status("connecting…");
    streamText(url, controller, function (text) {
      if (self.controller === controller && waiting.indexOf(self.statusEl.textContent) >= 0) self.status("live");
      onText(text);
    }, function () {
      if (self.controller === controller && self.statusEl.textContent === "connecting…") self.status(self.quietText);
    }).then(function () {
      if (controller.signal.aborted) return;
      self.active = false;
      self.status(endText);
    }, function (error) {
      if (controller.signal.aborted) return;
      self.active = false;
      self.status(error.message);
    });
  };
  Stream.prototype.resumeIfRunning = function () {
    if (!this.active && containerState() === "running" && Date.now() - this.startedAt > RESTART_GAP_MS) this.start();
  };

  document.addEventListener("DOMContentLoaded", function () {
    var panes = document.getElementById("container-panes");
    if (!panes) return;
    var base = "/ui/containers/" + encodeURIComponent(panes.getAttribute("data-container"));

    // -- logs
    var box = document.getElementById("logs");
    var tail = document.getElementById("logs-tail");
    var follow = document.getElementById("logs-follow");
    var autoscroll = document.getElementById("logs-autoscroll");
    var logChars = 0;

    function appendLog(text) {
      box.appendChild(document.createTextNode(text));
      logChars += text.length;
      if (logChars > MAX_LOG_CHARS) {
        var kept = box.textContent.slice(-MAX_LOG_CHARS / 2);
        box.textContent = kept;
        logChars = kept.length;
      }
      if (autoscroll.checked) box.scrollTop = box.scrollHeight;
    }

    var logs = new Stream(document.getElementById("logs-status"), startLogs);
    function startLogs() {
      box.textContent = "";
      logChars = 0;
      var url = base + "/logs?tail=" + encodeURIComponent(tail.value) + "&follow=" + (follow.checked ? "true" : "false");
      logs.run(url, appendLog, follow.checked ? "stream ended (the container stopped)" : "end of log");
    }
    tail.addEventListener("change", startLogs);
    follow.addEventListener("change", startLogs);
    autoscroll.addEventListener("change", function () { if (autoscroll.checked) box.scrollTop = box.scrollHeight; });
    document.getElementById("logs-clear").addEventListener("click", function () { box.textContent = ""; logChars = 0; });
    // scrolling up to read stops auto-scroll; scrolling back to the bottom turns it on again
    box.addEventListener("scroll", function () {
      autoscroll.checked = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
    });

    // -- stats
    var Charts = window.CorralCharts;
    var cpu = new Charts.LineChart(document.getElementById("chart-cpu"), { series: ["cpu"], floor: 5 });
    var memory = new Charts.LineChart(document.getElementById("chart-memory"), { series: ["memory"], floor: 1048576 });
    var network = new Charts.LineChart(document.getElementById("chart-network"), { series: ["rx", "tx"], floor: 1024 });
    var values = {
      cpu: document.getElementById("value-cpu"),
      memory: document.getElementById("value-memory"),
      network: document.getElementById("value-network")
    };
    var previous = null, pending = "";

    function onSample(sample) {
      if (sample.error) { stats.status(sample.error); return; }
      cpu.push([sample.cpu_percent]);
      values.cpu.textContent = Number(sample.cpu_percent).toFixed(1) + " %";
      memory.push([sample.memory_usage]);
      values.memory.textContent = Charts.bytes(sample.memory_usage) + " / " + Charts.bytes(sample.memory_limit);
      var rx = 0, tx = 0;
      if (previous && sample.time > previous.time) {
        var seconds = sample.time - previous.time;
        rx = Math.max(0, (sample.network_rx - previous.network_rx) / seconds);
        tx = Math.max(0, (sample.network_tx - previous.network_tx) / seconds);
      }
      network.push([rx, tx]);
      values.network.textContent = "↓ " + Charts.bytes(rx) + "/s  ↑ " + Charts.bytes(tx) + "/s";
      previous = sample;
    }

    function onStatsText(text) {
      pending += text;
      var lines = pending.split("\n");
      pending = lines.pop();
      lines.forEach(function (line) {
        if (!line.trim()) return;
        try { onSample(JSON.parse(line)); } catch (e) { /* a torn line cannot happen; ignore garbage */ }
      });
    }

    var stats = new Stream(document.getElementById("stats-status"), startStats);
    stats.quietText = "connected: waiting for the first sample";
    function startStats() {
      previous = null;
      pending = "";
      stats.run(base + "/stats", onStatsText, "not running");
    }

    // -- follow the container's state (the summary is re-rendered by htmx on every event)
    document.body.addEventListener("htmx:afterSettle", function (event) {
      if (!event.detail || !event.detail.target || event.detail.target.id !== "container-summary") return;
      if (follow.checked) logs.resumeIfRunning();
      stats.resumeIfRunning();
    });

    startLogs();
    if (containerState() === "running") startStats(); else stats.status("not running");
  });
})();
