// Apache ECharts, tree-shaken: the core, bar charts, the grid, tooltip, legend and
// aria (screen-reader descriptions) components, and the SVG renderer.

import * as echarts from 'echarts/core';
import { BarChart } from 'echarts/charts';
import { AriaComponent, GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';

echarts.use([BarChart, GridComponent, TooltipComponent, LegendComponent, AriaComponent, SVGRenderer]);

const live = new Set();

/**
 * A bar chart in `element`: `categories` on the x axis, `series` [{name, values (yuan
 * Numbers), labels (formatted strings)}], described for screen readers by `description`.
 */
export function barChart(element, { categories, series, description, colors }) {
  const chart = echarts.init(element, null, { renderer: 'svg' });
  live.add(chart);
  chart.setOption({
    animation: false,
    color: colors || ['#b4282d', '#2f6f4f', '#c9a227', '#34598a'],
    aria: { enabled: true, label: { description } },
    grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
    legend: { top: 0 },
    tooltip: {
      trigger: 'axis',
      formatter: (items) => [items[0].axisValueLabel]
        .concat(items.map((i) => `${i.marker}${i.seriesName} ${series[i.seriesIndex].labels[i.dataIndex]}`))
        .join('<br>'),
    },
    xAxis: { type: 'category', data: categories, axisLabel: { interval: 0, rotate: categories.length > 6 ? 45 : 0 } },
    yAxis: { type: 'value', axisLabel: { formatter: (v) => `¥${v.toLocaleString('en-US')}` } },
    series: series.map((s) => ({ type: 'bar', name: s.name, data: s.values })),
  });
  element.setAttribute('role', 'img');
  element.setAttribute('aria-label', description);
  return chart;
}

/** Disposes every chart (before a page is replaced). */
export function disposeCharts() {
  for (const chart of live) chart.dispose();
  live.clear();
}

export function resizeCharts() {
  for (const chart of live) chart.resize();
}
