/* silkwatch plot runtime: builds the page from the JSON block, draws each chart with ECharts.
 * Text from the data goes through textContent or ECharts data only; tooltips are
 * drawn by ECharts (richText), never as HTML. After drawing, each chart's
 * element carries data-series / data-marks (counts read back from the chart
 * model), and <body data-rendered> the number of charts drawn, for tests. */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('silkwatch-data').textContent);
  var world = JSON.parse(document.getElementById('silkwatch-world').textContent);
  var UNITS = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  var OPEN_ROWS = 25;

  function human(value) {
    if (value === null || value === undefined || isNaN(value)) { return ''; }
    var i = 0, v = Math.abs(value);
    while (v >= 1000 && i < UNITS.length - 1) { v /= 1000; i += 1; }
    var text = i === 0 ? String(Math.round(v * 100) / 100) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
    return (value < 0 ? '-' : '') + text + UNITS[i];
  }

  function countryName(code) {
    return world && world.names[code] ? code + ' ' + world.names[code] : code;
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function table(spec) {
    var t = el('table', null, 'values'), head = el('tr');
    spec.columns.forEach(function (c) { head.appendChild(el('th', c)); });
    t.appendChild(el('thead')).appendChild(head);
    var body = t.appendChild(el('tbody'));
    spec.rows.forEach(function (row) {
      var tr = el('tr');
      row.forEach(function (cell) {
        tr.appendChild(el('td', typeof cell === 'number' ? cell.toLocaleString('en-US') : cell,
          typeof cell === 'number' ? 'num' : null));
      });
      body.appendChild(tr);
    });
    return t;
  }

  /* The value table under a chart, folded away when it is long (the rows stay in the DOM). */
  function folded(spec) {
    var details = el('details', null, 'values');
    details.open = spec.rows.length <= OPEN_ROWS;
    details.appendChild(el('summary', 'values (' + spec.rows.length + ' rows)'));
    details.appendChild(table(spec));
    return details;
  }

  function valueAxes(axes) {
    [].concat(axes || []).forEach(function (axis) {
      if (axis.type === 'value' || axis.type === 'log') {
        axis.axisLabel = Object.assign({formatter: human}, axis.axisLabel || {});
      }
    });
  }

  /* A timeline bar: from [1] (start ms) to [2] (end ms) on the row of category [0]. */
  function timelineBar(params, api) {
    var row = api.value(0), start = api.coord([api.value(1), row]), end = api.coord([api.value(2), row]);
    var height = api.size([0, 1])[1] * 0.6;
    var rect = echarts.graphic.clipRectByRect(
      {x: start[0], y: start[1] - height / 2, width: Math.max(end[0] - start[0], 2), height: height},
      {x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height});
    return rect && {type: 'rect', shape: rect, style: api.style()};
  }

  var TOOLTIPS = {
    geo: function (p) {
      var v = Array.isArray(p.value) ? p.value[p.value.length - 2] : p.value;
      return countryName(p.name) + ': ' + (v === undefined || isNaN(v) ? 'no flows' : human(v));
    },
    timeline: function (p) {
      return p.value[3] + '\n' + new Date(p.value[1]).toISOString() + ' to ' + new Date(p.value[2]).toISOString() +
        '\n' + human(p.value[4]) + ' bytes';
    },
    bubble: function (p) {
      if (!p.data || !p.data.key) { return p.seriesName; }
      return p.data.key + '\npackets ' + human(p.value[0]) + ', bytes ' + human(p.value[1]) + ', records ' + human(p.value[2]);
    }
  };

  function prepare(chart) {
    var option = chart.option;
    option.animation = false;
    option.useUTC = true;
    option.tooltip = Object.assign({confine: true}, option.tooltip || {}, {renderMode: 'richText'});
    if (TOOLTIPS[chart.kind]) { option.tooltip.formatter = TOOLTIPS[chart.kind]; }
    valueAxes(option.xAxis);
    valueAxes(option.yAxis);
    (option.series || []).forEach(function (s) {
      if (s.type === 'custom') { s.renderItem = timelineBar; }
      if (s.type === 'treemap' || s.type === 'pie') {
        s.label = Object.assign({lineHeight: 15, formatter: function (p) { return p.name + '\n' + human(p.value); }}, s.label || {});
      }
    });
    return option;
  }

  /* Marks drawn per series; a map series holds every region, so count those with a value. */
  function marks(s) {
    var data = s.getData(), n = data.count();
    if (s.subType !== 'map') { return n; }
    var valued = 0;
    for (var i = 0; i < n; i += 1) {
      var v = s.getRawValue(i);
      if (v !== undefined && v !== null && !(typeof v === 'number' && isNaN(v))) { valued += 1; }
    }
    return valued;
  }

  function readBack(node, instance) {
    var series = instance.getModel().getSeries();
    node.dataset.series = String(series.length);
    node.dataset.marks = JSON.stringify(series.map(marks));
  }

  document.title = data.title;
  document.getElementById('title').textContent = data.title;
  document.getElementById('subtitle').textContent = data.subtitle;
  if (world) { echarts.registerMap('world', world.geojson); }
  var main = document.getElementById('charts'), drawn = 0;
  function done() {
    drawn += 1;
    if (drawn === data.charts.length) { document.body.dataset.rendered = String(drawn); }
  }
  data.charts.forEach(function (chart, i) {
    var section = main.appendChild(el('section', null, 'chart-' + chart.kind));
    section.appendChild(el('h2', chart.title));
    var node = section.appendChild(el('div', null, 'chart'));
    node.id = 'chart-' + i;
    node.dataset.kind = chart.kind;
    node.style.height = chart.height_px + 'px';
    if (chart.table) { section.appendChild(folded(chart.table)); }
    var instance = echarts.init(node, null, {renderer: 'svg'});
    var finished = false;
    instance.on('finished', function () {
      if (finished) { return; }
      finished = true;
      readBack(node, instance);
      done();
    });
    instance.setOption(prepare(chart));
    window.addEventListener('resize', function () { instance.resize(); });
  });
  data.tables.forEach(function (spec) {
    var section = main.appendChild(el('section', null, 'table'));
    section.appendChild(el('h2', spec.title));
    section.appendChild(table(spec));
  });
  if (data.charts.length === 0) { document.body.dataset.rendered = '0'; }
}());
