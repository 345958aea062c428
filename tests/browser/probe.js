// Appended (in a copy) to a page the harness wrote, by the test `browser::every_page_renders_its_charts_in_headless_chromium`:
// after layout, writes where each <svg> chart landed and how many marks it drew, and where each <h2> section
// starts, into <pre id="imagen-layout">, which
// `chromium --headless --dump-dom` prints. The pages themselves carry no script.
(function () {
  var W = document.documentElement.scrollWidth, H = document.documentElement.scrollHeight;
  var out = {page: [W, H], charts: []};
  document.querySelectorAll('svg').forEach(function (svg) {
    var r = svg.getBoundingClientRect();
    var marks = 0;
    svg.querySelectorAll('path,rect,circle,polyline,line,polygon').forEach(function (e) {
      var b = e.getBBox ? e.getBBox() : null;
      if (b && (b.width > 0 || b.height > 0)) marks++;
    });
    var title = svg.getAttribute('aria-label') || (svg.querySelector('title') || {}).textContent || '';
    out.charts.push({title: title, x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height, marks: marks});
  });
  out.sections = [];
  document.querySelectorAll('h2').forEach(function (h) {
    var r = h.getBoundingClientRect();
    out.sections.push({title: h.textContent, y: r.top + window.scrollY});
  });
  var pre = document.createElement('pre'); pre.id = 'imagen-layout'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
