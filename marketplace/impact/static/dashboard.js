/* Draws the officials' dashboard charts from the JSON the page carries (no inline script,
   so the page's Content-Security-Policy can forbid everything but this origin's files). */
(function () {
  "use strict";
  var element = document.getElementById("chart-data");
  if (!element || typeof Chart === "undefined") { return; }
  var data = JSON.parse(element.textContent);
  var labels = {
    poor: "Hộ nghèo", near_poor: "Hộ cận nghèo", newly_escaped: "Hộ mới thoát nghèo",
    average_living_standard: "Mức sống trung bình", not_poor: "Hộ không nghèo", unreviewed: "Chưa rà soát"
  };
  var colours = {
    poor: "#b5179e", near_poor: "#f77f00", newly_escaped: "#2a9d8f",
    average_living_standard: "#457b9d", not_poor: "#8d99ae", unreviewed: "#cccccc"
  };
  var groups = Object.keys(data.revenue_by_group);
  new Chart(document.getElementById("revenue-chart"), {
    type: "bar",
    data: {
      labels: data.months,
      datasets: groups.map(function (g) {
        return { label: labels[g] || g, data: data.revenue_by_group[g], backgroundColor: colours[g] };
      })
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { title: { display: true, text: "Doanh thu theo nhóm hộ (đồng)" } },
               scales: { x: { stacked: true }, y: { stacked: true } } }
  });
  new Chart(document.getElementById("poor-chart"), {
    type: "line",
    data: { labels: data.months, datasets: [{ label: "Hộ nghèo có bán hàng", data: data.poor_households, borderColor: "#b5179e" }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { title: { display: true, text: "Số hộ nghèo có bán hàng" } } }
  });
  var edges = data.uplift_edges;
  var bucketLabels = edges.map(function (edge, i) {
    var k = function (v) { return Math.round(v / 1000) + "k"; };
    return i + 1 < edges.length ? k(edge) + "–" + k(edges[i + 1]) : "≥ " + k(edge);
  });
  new Chart(document.getElementById("uplift-chart"), {
    type: "bar",
    data: { labels: bucketLabels, datasets: [{ label: "Số hộ-tháng", data: data.distribution, backgroundColor: "#17643f" }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { title: { display: true, text: "Thu nhập tăng thêm/người/tháng (đồng)" } } }
  });
  document.body.setAttribute("data-charts-ready", "true");
}());
