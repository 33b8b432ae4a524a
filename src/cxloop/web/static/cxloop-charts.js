// Draw every chart on the page from its JSON block (see cxloop/web/charts.py). Without this
// script, or without Plotly, each chart is still its table.
(function () {
  "use strict";
  function draw() {
    if (typeof window.Plotly === "undefined") return;
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var block = document.getElementById(el.getAttribute("data-chart") + "-data");
      if (!block) return;
      var spec = JSON.parse(block.textContent);
      spec.layout.font = { color: dark ? "#e6edf3" : "#1b1f24" };
      window.Plotly.newPlot(el, spec.data, spec.layout, { displayModeBar: false, responsive: true })
        .then(function () { el.setAttribute("data-drawn", "true"); });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
