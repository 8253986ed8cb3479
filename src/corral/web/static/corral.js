// Corral UI glue: live updates from the event stream, htmx settings, small form helpers.
// Pages mark regions that must follow the server with
//   hx-get="/ui/..." hx-trigger="corral:changed from:body" hx-swap="innerHTML"
// and this script fires `corral:changed` (debounced) whenever an event of the current environment arrives.
// Every event is also dispatched as a `corral:event` DOM event on document (detail = the event) for page scripts.
(function () {
  "use strict";

  var DEBOUNCE_MS = 300;
  var timer = null;

  function changed() {
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      if (window.htmx) window.htmx.trigger(document.body, "corral:changed");
    }, DEBOUNCE_MS);
  }

  function setStatus(state) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.className = "live live-" + state;
    el.title = state === "on" ? "live updates on" : "live updates reconnecting";
  }

  function connect(delay) {
    var path = document.body.dataset.liveEvents;
    if (!path) return;
    var env = document.body.dataset.environment || "";
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + location.host + path + (env ? "?environment=" + encodeURIComponent(env) : "");
    var socket = new WebSocket(url);
    // every (re)connection refreshes the live regions once: events sent before the socket opened (the page was
    // rendered a moment earlier) or while it was down are not replayed, and the regions would stay stale until the
    // next change
    socket.onopen = function () { setStatus("on"); delay = 1000; changed(); };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      document.dispatchEvent(new CustomEvent("corral:event", { detail: event }));
      changed();
    };
    socket.onclose = function (close) {
      setStatus("off");
      if (close.code === 4401) { location.href = "/ui/login?next=" + encodeURIComponent(location.pathname); return; }
      if (close.code === 4403) return;
      setTimeout(function () { connect(Math.min(delay * 2, 15000)); }, delay);
    };
  }

  // A page script marked data-reload that failed to load is asked for again, a few times, after a pause: Chromium
  // drops every request in flight when the machine's network changes (net::ERR_NETWORK_CHANGED, e.g. Docker adding a
  // bridge), and a page whose script never came would sit inert (a build's log box that opens empty). Deferred
  // scripts run in order, so this listener is in place before a later page script's failure is reported. Only
  // scripts that start whenever they run (not only at DOMContentLoaded) are marked.
  var SCRIPT_TRIES = 5;
  window.addEventListener("error", function (event) {
    var failed = event.target;
    if (!failed || failed.tagName !== "SCRIPT" || !failed.hasAttribute("data-reload")) return;
    var tries = Number(failed.getAttribute("data-tries") || "1");
    if (tries >= SCRIPT_TRIES) return;
    setTimeout(function () {
      var again = document.createElement("script");
      again.src = failed.src;
      again.setAttribute("data-reload", "");
      again.setAttribute("data-tries", String(tries + 1));
      failed.replaceWith(again);
    }, 500 * tries);
  }, true);

  // A live region's refresh that failed on the network (the server restarting, or Chromium's ERR_NETWORK_CHANGED
  // dropping requests in flight) is asked for again, backing off to 15 s; otherwise a region whose last refresh
  // failed would show a stale state until some later event.
  var retryDelay = 1000;
  document.addEventListener("htmx:sendError", function () {
    setTimeout(changed, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 15000);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) retryDelay = 1000;
  });

  document.addEventListener("DOMContentLoaded", function () {
    connect(1000);
    document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
  });

  // A form marked data-confirm="question" asks before it is sent: plain forms through their submit event, htmx
  // forms through htmx's confirm hook (htmx sends a request even when the submit event was cancelled).
  function isHtmx(el) {
    return ["hx-post", "hx-get", "hx-put", "hx-delete", "hx-patch"].some(function (a) { return el.hasAttribute(a); });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !isHtmx(form) && !window.confirm(question)) event.preventDefault();
  }, true);
  document.addEventListener("htmx:confirm", function (event) {
    var holder = event.detail.elt.closest && event.detail.elt.closest("[data-confirm]");
    if (!holder) return;
    event.preventDefault();
    if (window.confirm(holder.getAttribute("data-confirm"))) event.detail.issueRequest(true);
  });

  // Validation errors (400/409/422) come back as fragments to show next to the form: swap them like successes.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
