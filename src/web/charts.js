// Charts drawn as inline SVG elements (no library, no external request): bars of owed
// and made good per district, each bar scaled to its own district's debt so a small
// district is as readable as a big one; and small multiples of the pool over time, one
// panel per line with its own scale, so a 1.45-billion pledged line never flattens the
// delivered one.

import { yuan } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Horizontal bars: per row, `part` of `whole` (e.g. made good of owed), with labels. */
export function shareBars(rows, { title, wholeClass, partClass, wholeLabel, partLabel }) {
  const rowH = 30;
  const width = 360;
  const left = 90;
  const svg = s("svg", { viewBox: `0 0 ${width} ${rows.length * rowH + 40}`, class: "chart", role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  svg.append(s("rect", { x: left, y: 6, width: 10, height: 10, class: wholeClass }), s("text", { x: left + 14, y: 15 }, wholeLabel));
  svg.append(s("rect", { x: left + 120, y: 6, width: 10, height: 10, class: partClass }), s("text", { x: left + 134, y: 15 }, partLabel));
  const barW = width - left - 10;
  rows.forEach((r, i) => {
    const y = 30 + i * rowH;
    const share = r.whole > 0 ? Math.min(1, r.part / r.whole) : 0;
    svg.append(s("text", { x: left - 6, y: y + 13, "text-anchor": "end" }, r.label));
    svg.append(s("rect", { x: left, y, width: barW, height: 18, rx: 3, class: wholeClass }));
    svg.append(s("rect", { x: left, y, width: Math.max(share > 0 ? 2 : 0, barW * share), height: 18, rx: 3, class: partClass }));
    svg.append(s("text", { x: left + 4, y: y + 13, fill: "#000" }, `${(share * 100).toFixed(1)}% · ${yuan(r.whole)}`));
  });
  return svg;
}

/** One small panel of a series [[x, y], …] with its own y scale, labelled at its max. */
export function panel(points, { title, cls, xLabel }) {
  const w = 360;
  const h = 120;
  const pad = { l: 8, r: 8, t: 22, b: 18 };
  const xMax = Math.max(1, ...points.map((p) => p[0]));
  const yMax = Math.max(1, ...points.map((p) => p[1]));
  const x = (v) => pad.l + (v / xMax) * (w - pad.l - pad.r);
  const y = (v) => h - pad.b - (v / yMax) * (h - pad.t - pad.b);
  const svg = s("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  svg.append(s("text", { x: pad.l, y: 14, "font-weight": 600 }, `${title}: ${yuan(points.length ? points[points.length - 1][1] : 0)}`));
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
  const area = points.length ? `${d}L${x(points[points.length - 1][0]).toFixed(1)},${h - pad.b}L${x(points[0][0]).toFixed(1)},${h - pad.b}Z` : "";
  svg.append(s("path", { d: area, class: cls, opacity: 0.35 }), s("path", { d, fill: "none", stroke: "#333", "stroke-width": 1.5 }));
  svg.append(s("line", { x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b, stroke: "#999" }));
  svg.append(s("text", { x: w - pad.r, y: h - 4, "text-anchor": "end" }, `${xLabel} ${xMax}`));
  return svg;
}
