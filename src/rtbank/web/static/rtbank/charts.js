// Charts drawn from JSON the page embeds with json_script (the CSP forbids inline scripts).
// <canvas data-chart="ID"> reads {"labels": [...], "cumulative": [...]} from <script id="ID" type="application/json">.
(function () {
  if (typeof window.Chart === "undefined") return;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source) return;
    const data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [{ label: "patients (cumulative)", data: data.cumulative, borderColor: "#1f5fa8",
                     backgroundColor: "rgba(31,95,168,0.12)", fill: true, stepped: true, pointRadius: data.labels.length < 3 ? 4 : 0 }],
      },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    canvas.setAttribute("data-chart-drawn", "yes");
  });
})();
