// Stack page: each build's log, read with fetch() from the UI's streaming route while its box is open (at once for
// a build that still runs: the route follows it until it ends), and the builds' rows kept current.
//
// Why level-triggered: a read can fail at any moment. Chromium drops every request in flight when the machine's
// network changes (net::ERR_NETWORK_CHANGED: a Wi-Fi switch, a VPN, a bridge or veth that Docker adds), a proxy or a
// server restart cuts a stream. So a box does not remember "asked once" but "shown whole": while it is open and
// its log has not been read to the end, it reads it (again, from the first kept line), shows each failure with
// its reason in the box's status, and tries again after a pause; opening a box whose read failed asks at once.
// Why the rows are patched, not replaced: they are re-read from /ui/stacks/{id}/builds on every live update and
// when a followed log ends (the build's state changed), but only the rows' cells and the logs' summaries are
// swapped; a <details> element, its open state and the log it already shows are never replaced.
(function () {
  "use strict";

  var MAX_LOG_CHARS = 600000;
  var RETRY_MS = [1000, 2000, 4000, 8000];

  function LogBox(details) {
    this.details = details;
    this.pre = details.querySelector("pre");
    this.status = details.querySelector(".stream-status");
    this.reading = false;
    this.timer = null; // the next try after a failure
    this.failures = 0;
    this.complete = false; // read to the end of a build that ended
    var self = this;
    details.addEventListener("toggle", function () { self.want(); });
  }

  LogBox.prototype.show = function (state, text) {
    this.details.setAttribute("data-loaded", state);
    this.status.textContent = text;
  };

  // Read the log unless it is shown whole, is being read, or its box is closed.
  LogBox.prototype.want = function () {
    if (this.complete || this.reading || !this.details.open) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.read();
  };

  LogBox.prototype.append = function (text) {
    var pre = this.pre;
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent += text;
    if (pre.textContent.length > MAX_LOG_CHARS) pre.textContent = pre.textContent.slice(-MAX_LOG_CHARS);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };

  LogBox.prototype.read = function () {
    var self = this;
    this.reading = true;
    if (!this.failures) this.show("loading", "loading…");
    fetch(this.details.getAttribute("data-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (text) { throw new Error(text.trim() || "HTTP " + response.status); });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var first = true;
        function pump() {
          return reader.read().then(function (result) {
            var text = result.done ? decoder.decode() : decoder.decode(result.value, { stream: true });
            if (first && (text || result.done)) {
              self.pre.textContent = ""; // each read starts again at the first kept line
              self.failures = 0;
              self.show("reading", "");
              first = false;
            }
            if (text) self.append(text);
            if (!result.done) return pump();
          });
        }
        return pump();
      })
      .then(function () {
        // the route ends a log only once its build ended and every line was sent (a cut upstream is an error)
        self.reading = false;
        self.complete = true;
        self.show("done", "end of log");
        var row = self.details.closest("tr").previousElementSibling;
        var state = row && row.querySelector("[data-state]");
        if (!state || ["built", "failed"].indexOf(state.getAttribute("data-state")) < 0) refreshRows();
      }, function (error) {
        self.reading = false;
        var wait = RETRY_MS[Math.min(self.failures, RETRY_MS.length - 1)];
        self.failures += 1;
        self.show("failed", "cannot read the log: " + error.message + "; trying again in " + wait / 1000 + " s");
        self.timer = setTimeout(function () {
          self.timer = null;
          if (self.details.open) self.want();
          else self.show("failed", "cannot read the log: " + error.message + "; open it again to retry");
        }, wait);
      });
  };

  function localTimes(root) {
    root.querySelectorAll("time.build-time").forEach(function (el) {
      var seconds = parseFloat(el.getAttribute("datetime"));
      if (seconds) el.textContent = new Date(seconds * 1000).toLocaleString();
    });
  }

  function watch(details) {
    new LogBox(details).want();
  }

  // -- the rows: re-read and patched in place

  var refreshing = false;
  var again = false;
  var retryTimer = null;

  function patch(html) {
    var section = document.getElementById("stack-builds");
    var tbody = section.querySelector("tbody");
    var template = document.createElement("template");
    template.innerHTML = html;
    var after = null; // the fragment's order (newest first): a new build goes after the one before it
    template.content.querySelectorAll("tr.build-row").forEach(function (row) {
      var logRow = row.nextElementSibling;
      var old = document.getElementById(row.id);
      localTimes(row);
      if (old) {
        var oldLogRow = old.nextElementSibling;
        old.replaceWith(row);
        var summary = oldLogRow && oldLogRow.querySelector("summary");
        var freshSummary = logRow && logRow.querySelector("summary");
        if (summary && freshSummary && summary.textContent !== freshSummary.textContent) {
          summary.textContent = freshSummary.textContent;
        }
        after = oldLogRow || row;
        return;
      }
      tbody.insertBefore(row, after ? after.nextSibling : tbody.firstChild);
      after = row;
      if (logRow && logRow.classList.contains("build-log-row")) {
        tbody.insertBefore(logRow, row.nextSibling);
        after = logRow;
        var details = logRow.querySelector("details.build-log");
        if (details) watch(details);
      }
    });
    section.setAttribute("data-refreshed", String(Date.now()));
  }

  function refreshRows() {
    var section = document.getElementById("stack-builds");
    if (!section) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    var status = document.getElementById("builds-status");
    fetch(section.getAttribute("data-rows-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.text().then(function (text) {
          if (!response.ok) throw new Error(text.trim() || "HTTP " + response.status);
          return text;
        });
      })
      .then(function (html) {
        patch(html);
        status.textContent = "";
      }, function (error) {
        status.textContent = "cannot refresh the builds: " + error.message + "; trying again in 5 s";
        if (!retryTimer) retryTimer = setTimeout(function () { retryTimer = null; refreshRows(); }, 5000);
      })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refreshRows(); }
      });
  }

  function start() {
    var section = document.getElementById("stack-builds");
    if (!section) return;
    localTimes(section);
    section.querySelectorAll("details.build-log").forEach(watch);
    document.body.addEventListener("corral:changed", refreshRows); // fired by corral.js on every live update
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
