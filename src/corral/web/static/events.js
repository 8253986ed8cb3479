// Events log: appends every `corral:event` (dispatched by corral.js for each /v1/events message) to the table,
// newest on top, keeps at most data-max-rows rows, and hides rows whose resource type does not match the filter.
(function () {
  "use strict";

  function text(value) { return value === null || value === undefined ? "" : String(value); }

  function cell(row, value, className) {
    var td = document.createElement("td");
    td.textContent = text(value);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function clock(seconds) {
    var date = seconds ? new Date(seconds * 1000) : new Date();
    return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
  }

  // The state pill uses the same colour classes as the server-rendered pages (rendering.py state_class).
  var STATE_CLASSES = {
    active: "ok", running: "ok", healthy: "ok", upgraded: "info", upgrading: "info", activating: "info",
    provisioning: "info", initializing: "info", starting: "info", stopping: "info", removing: "info", reconnecting: "warn", pending: "warn", degraded: "warn",
    evacuating: "warn", disconnected: "bad", error: "bad", unhealthy: "bad", "upgrade-error": "bad"
  };

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("events");
    var body = document.getElementById("event-rows");
    var filter = document.getElementById("event-filter");
    var clear = document.getElementById("event-clear");
    if (!table || !body || !filter) return;
    var maxRows = parseInt(table.dataset.maxRows, 10) || 500;
    var environmentNames = {};
    document.querySelectorAll("#environment-names li").forEach(function (li) {
      environmentNames[li.dataset.id] = li.textContent;
    });

    function matches(row) {
      var wanted = filter.value.trim().toLowerCase();
      return !wanted || row.dataset.resourceType.toLowerCase().indexOf(wanted) !== -1;
    }

    function applyFilter() {
      body.querySelectorAll("tr[data-resource-type]").forEach(function (row) { row.hidden = !matches(row); });
    }

    document.addEventListener("corral:event", function (event) {
      var e = event.detail || {};
      if (e.type && e.type !== "resource.change") return;
      var data = e.data || {};
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      var row = document.createElement("tr");
      row.dataset.resourceType = text(e.resource_type);
      cell(row, clock(e.time), "mono");
      cell(row, e.resource_type);
      cell(row, e.action);
      // hovering the name shows what the event carried (its resource as the API returns it)
      cell(row, data.name || data.description || "").title = JSON.stringify(data).slice(0, 4000);
      cell(row, text(e.id).slice(0, 12), "mono").title = text(e.id);
      cell(row, environmentNames[e.environment_id] || text(e.environment_id).slice(0, 12));
      var stateCell = cell(row, "");
      if (data.state) {
        var pill = document.createElement("span");
        pill.className = "state state-" + (STATE_CLASSES[String(data.state).toLowerCase()] || "muted");
        pill.textContent = text(data.state);
        stateCell.appendChild(pill);
      }
      row.hidden = !matches(row);
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > maxRows) body.deleteRow(body.rows.length - 1);
    });

    filter.addEventListener("input", applyFilter);
    if (clear) clear.addEventListener("click", function () {
      body.querySelectorAll("tr[data-resource-type]").forEach(function (row) { row.remove(); });
    });
  });
})();
