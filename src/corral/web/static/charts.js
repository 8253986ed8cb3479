// Small SVG line charts for live figures (no library): a fixed window of the last N samples, one or more series,
// the vertical scale following the largest value in view. Used by container.js for CPU, memory and network.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var WIDTH = 300, HEIGHT = 80, PAD = 3;

  function element(name, attributes) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    return node;
  }

  // figure: the <figure> holding an <svg>; options: {series: ["rx", "tx"], window: 60, floor: minimum top of scale}
  function LineChart(figure, options) {
    this.figure = figure;
    this.svg = figure.querySelector("svg");
    this.series = options.series || ["value"];
    this.window = options.window || 60;
    this.floor = options.floor || 1;
    this.fixedMax = options.max || null;
    this.points = this.series.map(function () { return []; });
    this.samples = 0;
    this.svg.appendChild(element("line", { "class": "grid-line", x1: 0, x2: WIDTH, y1: HEIGHT / 2, y2: HEIGHT / 2 }));
    this.area = this.svg.appendChild(element("path", { "class": "area", d: "" }));
    var svg = this.svg;
    this.lines = this.series.map(function (name) {
      return svg.appendChild(element("polyline", { "class": "line " + name, points: "" }));
    });
  }

  LineChart.prototype.push = function (values) {
    for (var i = 0; i < this.series.length; i++) {
      var value = Number(values[i]);
      this.points[i].push(isFinite(value) && value > 0 ? value : 0);
      if (this.points[i].length > this.window) this.points[i].shift();
    }
    this.samples += 1;
    this.figure.setAttribute("data-samples", String(this.samples));
    this.draw();
  };

  LineChart.prototype.scaleTop = function () {
    if (this.fixedMax) return this.fixedMax;
    var top = this.floor;
    this.points.forEach(function (series) { series.forEach(function (v) { if (v > top) top = v; }); });
    return top * 1.1;
  };

  LineChart.prototype.draw = function () {
    var top = this.scaleTop(), step = WIDTH / (this.window - 1), window = this.window;
    var coordinates = this.points.map(function (series) {
      var offset = window - series.length;
      return series.map(function (v, index) {
        var x = (offset + index) * step;
        var y = HEIGHT - PAD - Math.min(v, top) / top * (HEIGHT - 2 * PAD);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
    });
    for (var i = 0; i < this.lines.length; i++) this.lines[i].setAttribute("points", coordinates[i].join(" "));
    var first = coordinates[0];
    if (first.length > 1) {
      var startX = first[0].split(",")[0], endX = first[first.length - 1].split(",")[0];
      this.area.setAttribute("d", "M" + startX + "," + HEIGHT + " L" + first.join(" L") + " L" + endX + "," + HEIGHT + " Z");
    }
  };

  LineChart.prototype.reset = function () {
    this.points = this.series.map(function () { return []; });
    this.draw();
  };

  function bytes(value) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], size = Number(value) || 0, unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return (unit === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + units[unit];
  }

  window.CorralCharts = { LineChart: LineChart, bytes: bytes };
})();
