// Plain-SVG charts: horizontal bars, point estimates with confidence intervals, heat maps.
import { h, s } from "./dom";

export const READER_COLOURS = [
  "#e6194b",
  "#3cb44b",
  "#4363d8",
  "#f58231",
  "#911eb4",
  "#42d4f4",
  "#f032e6",
  "#bfef45",
];

/** A chart as wide as its container: drawn at the container's width once laid out, again when that changes
 * (fixed-width charts sat at half a card's width, their text scaled to ~9 px). */
export function responsive(draw: (width: number) => SVGElement, initial = 600): HTMLElement {
  const box = h("div", { class: "fit" });
  let drawn = -1;
  const render = (width: number) => {
    const w = Math.max(280, Math.floor(width));
    if (w === drawn) return;
    drawn = w;
    box.replaceChildren(draw(w));
  };
  render(initial);
  if (typeof ResizeObserver !== "undefined")
    new ResizeObserver((entries) => {
      const width = entries[0]?.contentRect.width;
      if (width) render(width);
    }).observe(box);
  return box;
}

export function bars(
  values: number[],
  labels: string[],
  opts: { title: string; highlight?: number | null; width?: number },
): SVGElement {
  const w = opts.width ?? 320;
  const rowH = 22;
  const left = 70;
  const svg = s("svg", {
    width: w,
    height: rowH * values.length + 8,
    role: "img",
    "aria-label": opts.title,
    class: "bars",
  });
  svg.append(s("title", {}, opts.title));
  values.forEach((v, i) => {
    const y = 4 + i * rowH;
    const bw = Math.max(0, Math.min(1, v)) * (w - left - 50);
    svg.append(
      s("text", { x: 0, y: y + 14 }, labels[i]),
      s("rect", {
        x: left,
        y: y + 3,
        width: bw,
        height: rowH - 8,
        fill: i === opts.highlight ? "#4a9eff" : "#7f8c9d",
      }),
      s("text", { x: left + bw + 4, y: y + 14 }, v.toFixed(2)),
    );
  });
  return svg;
}

export interface Interval {
  label: string;
  value: number | null;
  low: number | null;
  high: number | null;
  colour?: string;
}

/** The number written beside an estimate: "0.62", or with `ci` "0.62 [0.41, 0.80]" when it has one. */
export function estimateText(r: Interval, ci = false): string {
  if (r.value === null) return "n/a";
  const value = r.value.toFixed(2);
  return ci && r.low !== null && r.high !== null
    ? `${value} [${r.low.toFixed(2)}, ${r.high.toFixed(2)}]`
    : value;
}

/** A forest plot on [-1, 1] (κ, α): one row per estimate, whiskers for the CI, a line at 0; `ci` writes the
 * interval beside each estimate too. */
export function forest(
  rows: Interval[],
  opts: { title: string; width?: number; min?: number; max?: number; ci?: boolean },
): SVGElement {
  const w = opts.width ?? 600;
  const left = 230;
  const right = opts.ci ? 130 : 60;
  const rowH = 18;
  const lowest = Math.min(-0.2, ...rows.map((r) => r.low ?? r.value ?? 0));
  const min = opts.min ?? Math.max(-1, Math.floor(lowest * 5) / 5); // κ and α can go below 0
  const max = opts.max ?? 1;
  const height = rowH * rows.length + 30;
  const x = (v: number) =>
    left + ((Math.min(Math.max(v, min), max) - min) / (max - min)) * (w - left - right);
  const svg = s("svg", { width: w, height, role: "img", "aria-label": opts.title });
  svg.append(s("title", {}, opts.title));
  for (const t of [-1, -0.8, -0.6, -0.4, -0.2, 0, 0.2, 0.4, 0.6, 0.8, 1]) {
    if (t < min || t > max) continue;
    svg.append(
      s("line", {
        x1: x(t),
        x2: x(t),
        y1: 4,
        y2: height - 22,
        class: "axis",
        "stroke-dasharray": t === 0 ? "" : "2 3",
      }),
      s("text", { x: x(t) - 8, y: height - 8 }, t.toFixed(1)),
    );
  }
  rows.forEach((r, i) => {
    const y = 12 + i * rowH;
    svg.append(s("text", { x: 0, y: y + 4 }, r.label));
    if (r.value === null) {
      svg.append(s("text", { x: left + 6, y: y + 4 }, "n/a"));
      return;
    }
    const colour = r.colour ?? "#0b5cad";
    if (r.low !== null && r.high !== null)
      svg.append(s("line", { x1: x(r.low), x2: x(r.high), y1: y, y2: y, stroke: colour, class: "ci" }));
    svg.append(
      s("circle", { cx: x(r.value), cy: y, r: 4, fill: colour }),
      s("text", { x: w - right + 6, y: y + 4 }, estimateText(r, opts.ci)),
    );
  });
  return svg;
}

/** A heat map of a row-stochastic matrix (rows: consensus class, columns: reader's answer). */
export function heatmap(
  matrix: number[][],
  opts: { title: string; labels: string[]; cell?: number },
): SVGElement {
  const c = opts.cell ?? 34;
  const off = 30;
  const n = matrix.length;
  const m = matrix[0]?.length ?? 0;
  const svg = s("svg", {
    width: off + m * c + 4,
    height: off + n * c + 20,
    role: "img",
    "aria-label": opts.title,
  });
  svg.append(s("title", {}, opts.title));
  opts.labels
    .slice(0, m)
    .forEach((l, j) => svg.append(s("text", { x: off + j * c + c / 2 - 4, y: off - 6 }, l)));
  matrix.forEach((row, i) => {
    svg.append(s("text", { x: 4, y: off + i * c + c / 2 + 4 }, opts.labels[i] ?? String(i)));
    row.forEach((v, j) => {
      const shade = Math.round(255 - Math.max(0, Math.min(1, v)) * 200);
      svg.append(
        s("rect", {
          x: off + j * c,
          y: off + i * c,
          width: c - 1,
          height: c - 1,
          fill: `rgb(${shade},${shade},255)`,
        }),
        s(
          "text",
          {
            x: off + j * c + 5,
            y: off + i * c + c / 2 + 4,
            fill: v > 0.6 ? "#fff" : "#000",
            style: `fill:${v > 0.6 ? "#fff" : "#000"}`,
          },
          v.toFixed(2),
        ),
      );
    });
  });
  return svg;
}

/** Cumulative count over time: sorted [time ms, count] steps from a list of ISO timestamps (nulls skipped). */
export function cumulative(timestamps: (string | null | undefined)[]): [number, number][] {
  const times = timestamps
    .filter((t): t is string => !!t)
    .map((t) => Date.parse(t))
    .filter((t) => Number.isFinite(t))
    .sort((a, b) => a - b);
  return times.map((t, i) => [t, i + 1]);
}

/** A step line of a cumulative count against time, with the total as the y-axis maximum. */
export function progressChart(
  steps: [number, number][],
  opts: { title: string; total: number; width?: number },
): SVGElement {
  const w = opts.width ?? 560;
  const hgt = 180;
  const left = 40;
  const bottom = 24;
  const svg = s("svg", { width: w, height: hgt, role: "img", "aria-label": opts.title });
  svg.append(s("title", {}, opts.title));
  const max = Math.max(opts.total, steps.at(-1)?.[1] ?? 0, 1);
  const t0 = steps[0]?.[0] ?? 0;
  const t1 = Math.max(steps.at(-1)?.[0] ?? 1, t0 + 1);
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (w - left - 10);
  const y = (v: number) => hgt - bottom - (v / max) * (hgt - bottom - 10);
  svg.append(
    s("line", { x1: left, x2: w - 10, y1: y(0), y2: y(0), class: "axis" }),
    s("line", { x1: left, x2: left, y1: y(0), y2: y(max), class: "axis" }),
    s("text", { x: 2, y: y(max) + 4 }, String(max)),
    s("text", { x: 2, y: y(0) + 4 }, "0"),
  );
  if (steps.length) {
    let d = `M ${x(t0)} ${y(0)}`;
    for (const [t, v] of steps) d += ` H ${x(t)} V ${y(v)}`;
    svg.append(
      s("path", { d, fill: "none", stroke: "#0b5cad", "stroke-width": 2 }),
      s("text", { x: left, y: hgt - 6 }, new Date(t0).toLocaleString()),
      s("text", { x: w - 170, y: hgt - 6 }, new Date(t1).toLocaleString()),
    );
  }
  return svg;
}

export interface Line {
  label: string;
  colour: string;
  /** [x, y] points; a null y leaves a gap. */
  points: [number, number | null][];
}

/** Lines against a shared x axis, each scaled to its own y range (loss and a metric differ in units);
 * the legend names each line with its last value. */
export function lineChart(
  lines: Line[],
  opts: { title: string; xLabel?: string; width?: number },
): SVGElement {
  const w = opts.width ?? 420;
  const legendH = 18 * lines.length;
  const plotH = 120;
  const hgt = plotH + 30 + legendH;
  const left = 30;
  const svg = s("svg", { width: w, height: hgt, role: "img", "aria-label": opts.title, class: "lines" });
  svg.append(s("title", {}, opts.title));
  const xs = lines.flatMap((l) => l.points.map(([x]) => x));
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = Math.max(...xs, x0 + 1);
  const x = (v: number) => left + ((v - x0) / (x1 - x0)) * (w - left - 10);
  const bottom = plotH + 6;
  svg.append(
    s("line", { x1: left, x2: w - 10, y1: bottom, y2: bottom, class: "axis" }),
    s("text", { x: left, y: bottom + 16 }, String(x0)),
    s("text", { x: w - 10, y: bottom + 16, "text-anchor": "end" }, `${opts.xLabel ?? ""} ${x1}`.trim()),
  );
  lines.forEach((line, i) => {
    const ys = line.points.map(([, y]) => y).filter((y): y is number => y !== null && Number.isFinite(y));
    const lo = Math.min(...ys);
    const hi = Math.max(...ys);
    const y = (v: number) =>
      hi > lo ? bottom - 4 - ((v - lo) / (hi - lo)) * (plotH - 10) : bottom - plotH / 2;
    let d = "";
    let pen = false;
    for (const [px, py] of line.points) {
      if (py === null || !Number.isFinite(py)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"} ${x(px).toFixed(1)} ${y(py).toFixed(1)} `;
      pen = true;
    }
    if (d) svg.append(s("path", { d, fill: "none", stroke: line.colour, "stroke-width": 2 }));
    for (const [px, py] of line.points)
      if (py !== null && Number.isFinite(py))
        svg.append(s("circle", { cx: x(px), cy: y(py), r: 2.5, fill: line.colour }));
    const last = ys.at(-1);
    const ly = plotH + 40 + i * 18;
    svg.append(
      s("rect", { x: left, y: ly - 9, width: 12, height: 4, fill: line.colour }),
      s(
        "text",
        { x: left + 18, y: ly - 3 },
        `${line.label}${last === undefined ? "" : `: ${Number(last.toPrecision(4))}`}${ys.length > 1 ? ` (range ${Number(lo.toPrecision(3))}–${Number(hi.toPrecision(3))})` : ""}`,
      ),
    );
  });
  return svg;
}
