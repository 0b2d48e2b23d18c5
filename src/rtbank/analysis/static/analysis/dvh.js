// The plan page's DVH plot: cumulative curves per ROI (volume % against dose), toggled from the legend.
// Data come from <script type="application/json" id="dvh-data"> (json_script); the CSP forbids inline code.
(function () {
  const canvas = document.querySelector("canvas[data-dvh]");
  if (!canvas || typeof window.Chart === "undefined") return;
  const source = document.getElementById(canvas.getAttribute("data-dvh"));
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const palette = ["#1f5fa8", "#b42318", "#067647", "#b54708", "#6941c6", "#0e7090", "#c11574", "#4e5ba6"];
  const datasets = data.rois.map(function (roi, i) {
    const colour = /^#[0-9a-f]{6}$/i.test(roi.color) ? roi.color : palette[i % palette.length];
    return {
      label: roi.standard ? roi.name + " (" + roi.standard + ")" : roi.name,
      data: roi.volume_pct.map(function (v, k) { return { x: +(k * roi.step).toFixed(4), y: v }; }),
      borderColor: colour, backgroundColor: colour, borderWidth: 1.5, pointRadius: 0, tension: 0,
    };
  });
  const chart = new window.Chart(canvas, {
    type: "line",
    data: { datasets: datasets },
    options: {
      animation: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: { type: "linear", min: 0, title: { display: true, text: "dose (Gy)" } },
        y: { min: 0, max: 100, title: { display: true, text: "volume (%)" } },
      },
      plugins: { legend: { position: "right" } },
    },
  });
  const toggles = document.getElementById("dvh-toggles");
  if (toggles) {
    toggles.hidden = false;
    toggles.querySelectorAll("[data-dvh-all]").forEach(function (button) {
      button.addEventListener("click", function () {
        const on = button.getAttribute("data-dvh-all") === "on";
        chart.data.datasets.forEach(function (_, i) { chart.setDatasetVisibility(i, on); });
        chart.update();
      });
    });
  }
  canvas.setAttribute("data-chart-drawn", "yes");
})();
