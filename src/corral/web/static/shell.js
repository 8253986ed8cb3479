// Container page: an interactive shell in xterm.js over the browser websocket /ui/ws/containers/{id}/exec.
// Binary frames carry the terminal's bytes both ways; a text frame {"resize": [rows, cols]} follows the terminal's
// size; the server's text frame {"exit_code": N, "error": ...} ends the session.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var panes = document.getElementById("container-panes");
    var openButton = document.getElementById("shell-open");
    if (!panes || !openButton) return;
    var closeButton = document.getElementById("shell-close");
    var statusEl = document.getElementById("shell-status");
    var holder = document.getElementById("terminal");
    var path = "/ui/ws/containers/" + encodeURIComponent(panes.getAttribute("data-container")) + "/exec";
    var terminal = null, fit = null, socket = null;
    var encoder = new TextEncoder();

    function status(text) { statusEl.textContent = text; }

    function sendSize() {
      if (socket && socket.readyState === WebSocket.OPEN && terminal) {
        socket.send(JSON.stringify({ resize: [terminal.rows, terminal.cols] }));
      }
    }

    function ensureTerminal() {
      if (terminal) return;
      if (!window.Terminal) { status("xterm.js is not installed (run make setup)"); return; }
      holder.hidden = false;
      terminal = new window.Terminal({
        cursorBlink: true, convertEol: false, fontSize: 13, scrollback: 2000,
        fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace'
      });
      if (window.FitAddon) {
        fit = new window.FitAddon.FitAddon();
        terminal.loadAddon(fit);
      }
      terminal.open(holder);
      terminal.onData(function (data) {
        if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
      });
      terminal.onResize(sendSize);
      window.addEventListener("resize", function () { if (fit) fit.fit(); });
    }

    function finished(text) {
      socket = null;
      openButton.disabled = false;
      closeButton.disabled = true;
      openButton.textContent = "Open shell again";
      status(text);
    }

    openButton.addEventListener("click", function () {
      ensureTerminal();
      if (!terminal || socket) return;
      if (fit) fit.fit();
      terminal.reset();
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + path);
      ws.binaryType = "arraybuffer";
      socket = ws;
      openButton.disabled = true;
      closeButton.disabled = false;
      status("connecting…");
      var ended = "";
      ws.onopen = function () { status("connected"); sendSize(); terminal.focus(); };
      ws.onmessage = function (message) {
        if (typeof message.data === "string") {
          var control;
          try { control = JSON.parse(message.data); } catch (e) { return; }
          if (control.error) ended = "ended: " + control.error;
          else if ("exit_code" in control) ended = "exited with code " + control.exit_code;
          return;
        }
        terminal.write(new Uint8Array(message.data));
      };
      ws.onclose = function (close) {
        if (socket !== ws) return;
        var reason = ended || (close.reason ? "closed: " + close.reason : "closed");
        finished(reason);
        terminal.write("\r\n\x1b[2m[" + reason + "]\x1b[0m\r\n");
      };
    });

    closeButton.addEventListener("click", function () {
      if (socket) socket.close();
    });
  });
})();
