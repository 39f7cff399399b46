const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 240;
const HEIGHT = 56;
/** Room above the highest point, so a flat maximum does not sit on the edge. */
const HEADROOM = 0.15;

/**
 * Draws `values` (oldest first) as an area sparkline filling the SVG's 240×56 view box. The
 * scale's top is the window's maximum (at least `minTop`), written to `data-peak` for readers
 * of the page, human or test.
 */
export function drawSparkline(svg: SVGSVGElement, values: readonly number[], minTop = 1): void {
  const peak = values.reduce((max, v) => Math.max(max, v), 0);
  const top = Math.max(minTop, peak) * (1 + HEADROOM);
  const step = values.length > 1 ? WIDTH / (values.length - 1) : WIDTH;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(HEIGHT - (v / top) * HEIGHT).toFixed(1)}`);
  const line = points.length > 0 ? `M${points.join('L')}` : '';
  const area = points.length > 0 ? `${line}L${WIDTH},${HEIGHT}L0,${HEIGHT}Z` : '';
  path(svg, 'spark-area').setAttribute('d', area);
  path(svg, 'spark-line').setAttribute('d', line);
  svg.dataset.peak = String(peak);
}

function path(svg: SVGSVGElement, className: string): SVGPathElement {
  const found = svg.querySelector(`path.${className}`);
  if (found instanceof SVGPathElement) return found;
  const created = svg.ownerDocument.createElementNS(SVG, 'path');
  created.setAttribute('class', className);
  created.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(created);
  return created;
}
