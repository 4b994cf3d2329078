// The console's own script: the token for actions, and the live charts.
(function () {
  "use strict";
  var KEY = "rowgear-console-token";

  function tokenInput() { return document.getElementById("token"); }

  document.addEventListener("DOMContentLoaded", function () {
    var t = tokenInput();
    if (t) {
      t.value = sessionStorage.getItem(KEY) || "";
      t.addEventListener("input", function () { sessionStorage.setItem(KEY, t.value); });
    }
    charts();
  });

  // Every htmx request carries the token, when one was entered.
  document.addEventListener("htmx:configRequest", function (e) {
    var t = tokenInput();
    if (t && t.value) { e.detail.headers["X-Console-Token"] = t.value; }
  });

  function size() { return { width: Math.max(320, Math.min(620, (window.innerWidth - 80) / 2)), height: 220 }; }

  function charts() {
    var ev = document.getElementById("chart-events");
    var lat = document.getElementById("chart-latency");
    if (!ev || !lat || typeof uPlot === "undefined") { return; }
    var plots = null;
    function make(data) {
      var s = size();
      var pe = new uPlot({
        width: s.width, height: s.height,
        series: [{}, { label: "worker runs/s", stroke: "#2456a6", width: 2 },
                 { label: "bridge published/s", stroke: "#1a7f37", dash: [6, 4] }],
        axes: [{}, { size: 60 }]
      }, [data[0], data[1], data[2]], ev);
      var pl = new uPlot({
        width: s.width, height: s.height,
        series: [{}, { label: "p50 ms", stroke: "#9a6700", width: 2 }, { label: "p99 ms", stroke: "#c62828" }],
        axes: [{}, { size: 60 }]
      }, [data[0], data[3], data[4]], lat);
      return [pe, pl];
    }
    function last(a) { for (var i = a.length - 1; i >= 0; i--) { if (a[i] !== null) { return a[i]; } } return null; }
    function update() {
      fetch("/api/series", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (j) {
        var d = j.data;
        if (!plots) { plots = make(d); } else {
          plots[0].setData([d[0], d[1], d[2]]);
          plots[1].setData([d[0], d[3], d[4]]);
        }
        // What the page shows, for people reading the DOM (and tests).
        ev.dataset.points = d[0].length;
        ev.dataset.active = d[1].filter(function (v) { return v > 0; }).length;
        ev.dataset.worker = last(d[1]);
        ev.dataset.bridge = last(d[2]);
        lat.dataset.points = d[0].length;
        lat.dataset.p50 = last(d[3]);
        lat.dataset.p99 = last(d[4]);
        every = Math.max(1, Math.min(5, j.every || 5));
      }).catch(function () { /* the next tick tries again */ }).finally(function () {
        setTimeout(update, every * 1000);
      });
    }
    var every = 5;
    update();
  }
})();
