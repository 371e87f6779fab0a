// Console behaviour that needs no framework: Plotly charts from JSON embedded in the page,
// auto-submitting selects and confirmation prompts.
(function () {
  "use strict";

  function renderCharts(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.rendered) return;
      var source = document.getElementById(el.dataset.figure);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, figure.data, figure.layout, { displaylogo: false, responsive: true,
        modeBarButtonsToRemove: ["lasso2d", "select2d"] });
      el.dataset.rendered = "1";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderCharts(document);
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Plotly is loaded with defer as well; render once it has run.
  window.addEventListener("load", function () { renderCharts(document); });
  // A part of a page loaded later (htmx) may bring charts of its own.
  document.addEventListener("htmx:afterSettle", function () { renderCharts(document); });
})();
