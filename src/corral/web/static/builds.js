// Stack page: each build's log, read with fetch() from the UI's streaming route when its box is opened (at once for
// a build that still runs: the route follows it until it ends, as the container page follows a container's log).
(function () {
  "use strict";

  var MAX_LOG_CHARS = 600000;

  function follow(details) {
    var pre = details.querySelector("pre");
    var status = details.querySelector(".stream-status");
    details.setAttribute("data-loaded", "loading");
    status.textContent = "loading…";
    fetch(details.getAttribute("data-url"), { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        return response.text().then(function (text) { throw new Error(text.trim() || "HTTP " + response.status); });
      }
      status.textContent = "";
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      function append(text) {
        var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent += text;
        if (pre.textContent.length > MAX_LOG_CHARS) pre.textContent = pre.textContent.slice(-MAX_LOG_CHARS);
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
      function pump() {
        return reader.read().then(function (result) {
          if (result.done) {
            append(decoder.decode());
            details.setAttribute("data-loaded", "done");
            status.textContent = "end of log";
            return;
          }
          append(decoder.decode(result.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    }).catch(function (error) {
      details.setAttribute("data-loaded", "failed");
      status.textContent = "cannot read the log: " + error.message;
    });
  }

  function start() {
    document.querySelectorAll("time.build-time").forEach(function (el) {
      var seconds = parseFloat(el.getAttribute("datetime"));
      if (seconds) el.textContent = new Date(seconds * 1000).toLocaleString();
    });
    document.querySelectorAll("details.build-log").forEach(function (details) {
      if (details.open) follow(details);
      details.addEventListener("toggle", function () {
        if (details.open && !details.getAttribute("data-loaded")) follow(details);
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
