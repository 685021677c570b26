// Reader study (issue 14): does the AI help? Per endpoint, the reader-averaged and per-reader ROC curves of
// two conditions' reads (unaided and aided by default, or any two, e.g. T1 only vs T1 + STIR), a forest plot of the per-reader AUC differences, the change in agreement, and the
// MRMC (Obuchowski–Rockette, Hillis df) test — all from GET /api/projects/{id}/reader-study/, which answers
// 202 while the worker computes it.
import type { S } from "../../api";
import { get, untilReady } from "../../api/client";
import { forest, type Interval } from "../../ui/charts";
import { fmt, h, message, s } from "../../ui/dom";
import type { Params } from "../../router";

type Curve = S["RocCurveOutput"];
type Diff = S["DifferenceOutput"];
type Endpoint = S["ReaderStudyEndpointOutput"];
/** The answer: the analysis, or 202 while the worker computes it. */
export type ReaderStudy = S["ReaderStudyOutput"] | S["ReaderStudyComputingOutput"];

const COLOURS: Record<string, string> = { unaided: "#0b5cad", aided: "#b45309" };
const PALETTE = ["#0b5cad", "#b45309", "#15803d", "#7e22ce"];
const colourOf = (condition: string, i: number): string => COLOURS[condition] ?? PALETTE[i % PALETTE.length];

/** The API query of one analysis: the reference standard, and the two conditions when the admin named them. */
export function studyQuery(reference: string, conditions: string | null): string {
  const q = new URLSearchParams({ reference });
  const pair = (conditions ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  if (pair.length) q.set("conditions", pair.join(","));
  return `?${q.toString()}`;
}

/** Inter-reader agreement in both conditions and its change, in words. */
export function agreementText(ag: NonNullable<Endpoint["agreement"]>, conditions: readonly string[]): string {
  const [a, b] = conditions;
  return `Inter-reader agreement (Fleiss κ): ${a} ${fmt(ag.kappa_first)}, ${b} ${fmt(ag.kappa_second)}; change ${fmt(ag.difference)} (95% CI ${fmt(ag.ci_lower)} to ${fmt(ag.ci_upper)}) · Krippendorff α: ${a} ${fmt(ag.alpha_first)}, ${b} ${fmt(ag.alpha_second)}; change ${fmt(ag.alpha_difference)} (95% CI ${fmt(ag.alpha_ci_lower)} to ${fmt(ag.alpha_ci_upper)})`;
}

/** Intra-reader agreement per condition (repeat reads in the same condition), in words. */
export function intraText(
  intra: NonNullable<Endpoint["intra_reader"]>,
  conditions: readonly string[],
): string {
  const parts = conditions.map((c) => {
    const i = intra[c];
    if (!i || !i.n_pairs) return `${c}: no repeat reads`;
    return `${c} ${fmt(i.kappa)} (95% CI ${fmt(i.ci_lower)} to ${fmt(i.ci_upper)}, ${i.n_pairs} pairs)`;
  });
  return `Intra-reader agreement (Cohen κ, repeat reads): ${parts.join("; ")}`;
}
const REFERENCES = ["phantom", "adjudicated", "consensus"];

/** Empirical ROC curves: thin per reader, thick reader average, one colour per condition. */
export function rocChart(roc: NonNullable<Endpoint["roc"]>, title: string, size = 300): SVGElement {
  const pad = 34;
  const inner = size - 2 * pad;
  const pt = (x: number, y: number) =>
    `${(pad + x * inner).toFixed(1)} ${(pad + (1 - y) * inner).toFixed(1)}`;
  const path = (c: Curve) => c.fpr.map((x, i) => `${i ? "L" : "M"} ${pt(x, c.tpr[i])}`).join(" ");
  const svg = s("svg", {
    width: size,
    height: size,
    role: "img",
    "aria-label": title,
    "data-figure": "roc",
  });
  svg.append(
    s("title", {}, title),
    s("rect", { x: pad, y: pad, width: inner, height: inner, fill: "none", class: "axis" }),
    s("line", {
      x1: pad,
      y1: pad + inner,
      x2: pad + inner,
      y2: pad,
      class: "axis",
      "stroke-dasharray": "3 3",
    }),
    s("text", { x: size / 2 - 40, y: size - 6 }, "1 − specificity"),
    s("text", { x: 4, y: pad - 8 }, "sensitivity"),
  );
  Object.entries(roc).forEach(([condition, curves], i) => {
    const colour = colourOf(condition, i);
    for (const c of Object.values(curves.readers))
      svg.append(
        s("path", { d: path(c), fill: "none", stroke: colour, "stroke-opacity": 0.35, class: "roc-reader" }),
      );
    svg.append(
      s("path", {
        d: path(curves.average),
        fill: "none",
        stroke: colour,
        "stroke-width": 2.5,
        class: "roc-average",
        "data-condition": condition,
      }),
      s("rect", { x: pad + inner - 80, y: pad + inner - 30 + i * 14, width: 12, height: 4, fill: colour }),
      s("text", { x: pad + inner - 64, y: pad + inner - 25 + i * 14 }, condition),
    );
  });
  return svg;
}

type Shown = Pick<Diff, "reader" | "estimate" | "ci_lower" | "ci_upper">;

export function differenceIntervals(fixed: { reader_differences: Shown[] }, overall: Shown): Interval[] {
  return [
    ...fixed.reader_differences.map((d) => ({
      label: d.reader ?? "",
      value: d.estimate,
      low: d.ci_lower,
      high: d.ci_upper,
    })),
    {
      label: "All readers (OR–Hillis)",
      value: overall.estimate,
      low: overall.ci_lower,
      high: overall.ci_upper,
      colour: "#b45309",
    },
  ];
}

function endpointSection(ep: Endpoint, conditions: readonly string[]): HTMLElement {
  const section = h("section", { class: "endpoint", "data-endpoint": ep.key }, h("h2", null, ep.label));
  if (ep.error || !ep.analyses || !ep.roc) {
    section.append(message(`Not analysed: ${ep.error ?? "no data"}`));
    return section;
  }
  const auc = ep.analyses.auc;
  const diff = auc.differences[0];
  const g = auc.global_test;
  const level = Math.round(100 * auc.conf_level);
  section.append(
    h(
      "p",
      { class: "sub" },
      `${ep.n_readers} readers · ${ep.n_units} ${ep.unit}s · AUC ${diff.first} − ${diff.second}: `,
      h("strong", { "data-gain": "auc" }, fmt(diff.estimate, 3)),
      ` (${level}% CI ${fmt(diff.ci_lower, 3)} to ${fmt(diff.ci_upper, 3)}), ${g.statistic}(${g.df1}, ${fmt(g.df2, 1)}) = ${fmt(g.value, 2)}, p = ${fmt(g.p_value, 3)}`,
    ),
  );
  const rows = auc.condition_estimates.map((c) =>
    h(
      "tr",
      null,
      h("td", null, c.condition),
      h("td", null, fmt(c.estimate, 3)),
      h("td", null, `${fmt(c.ci_lower, 3)} to ${fmt(c.ci_upper, 3)}`),
    ),
  );
  const fixed = ep.analyses.auc_fixed_readers;
  const intervals = differenceIntervals(fixed, diff);
  const lows = intervals.map((r) => r.low ?? r.value ?? 0);
  const highs = intervals.map((r) => r.high ?? r.value ?? 0);
  const min = Math.floor(Math.min(-0.05, ...lows) * 10) / 10;
  const max = Math.ceil(Math.max(0.05, ...highs) * 10) / 10;
  section.append(
    h(
      "div",
      { class: "cols" },
      h(
        "figure",
        { class: "chart" },
        h("figcaption", null, "ROC curves (thin: each reader; thick: reader average)"),
        rocChart(ep.roc, `ROC curves of ${ep.label}, ${conditions.join(" and ")}`),
      ),
      h(
        "figure",
        { class: "chart", "data-figure": "forest" },
        h("figcaption", null, `AUC difference ${diff.first} − ${diff.second} per reader (${level}% CI)`),
        forest(intervals, { title: `AUC differences per reader for ${ep.label}`, min, max, width: 460 }),
      ),
    ),
    h(
      "table",
      null,
      h(
        "thead",
        null,
        h("tr", null, h("th", null, "condition"), h("th", null, "AUC"), h("th", null, `${level}% CI`)),
      ),
      h("tbody", null, rows),
    ),
  );
  const ag = ep.agreement;
  if (ag) section.append(h("p", { class: "sub", "data-agreement": ep.key }, agreementText(ag, conditions)));
  if (ep.intra_reader)
    section.append(h("p", { class: "sub", "data-intra": ep.key }, intraText(ep.intra_reader, conditions)));
  return section;
}

export async function readerStudyView(outlet: HTMLElement, params: Params): Promise<void> {
  const id = Number(params.id);
  const search = new URLSearchParams(location.search);
  const reference = search.get("reference") ?? "phantom";
  const asked = search.get("conditions");
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  const base = `/api/projects/${id}/reader-study`;
  const query = studyQuery(reference, asked);
  const picker = h(
    "select",
    {
      id: "reference",
      onchange: (e: Event) => {
        location.search = studyQuery((e.target as HTMLSelectElement).value, asked);
      },
    },
    REFERENCES.map((r) => h("option", { value: r, selected: r === reference }, r)),
  );
  const pairInput = h("input", {
    id: "conditions",
    type: "text",
    size: 22,
    value: asked ?? "",
    placeholder: "e.g. unaided,aided",
    onchange: (e: Event) => {
      location.search = studyQuery(reference, (e.target as HTMLInputElement).value);
    },
  });
  main.append(
    h("h1", null, "Reader study: does the AI help?"),
    h(
      "p",
      { class: "sub" },
      h("label", { for: "reference" }, "Reference standard "),
      picker,
      " · ",
      h("label", { for: "conditions" }, "Conditions compared "),
      pairInput,
      " · ",
      h("a", { href: `${base}.csv${query}` }, "Download CSV"),
      " · ",
      h(
        "a",
        { href: `${base}/report.html${query}&download=1`, "data-report": "download" },
        "Download report (HTML)",
      ),
    ),
  );
  const status = message("Computing the analysis on the worker…");
  main.append(status);
  const study = await untilReady(() => get<ReaderStudy>(`${base}/${query}`));
  status.remove();
  if (study.status !== "ready") {
    main.append(message("The analysis is still being computed; reload this page in a minute.", "error"));
    return;
  }
  const conditions = study.conditions ?? ["unaided", "aided"];
  const labels = study.condition_labels ?? conditions;
  main.append(
    h(
      "p",
      { class: "sub", "data-conditions": conditions.join(",") },
      `Design: ${study.design} · conditions: ${labels.join(" vs ")} (differences ${conditions[1]} − ${conditions[0]}) · reference: ${study.reference_label} · data ${study.data_hash?.slice(0, 12)}`,
    ),
    ...(study.endpoints ?? []).map((ep) => endpointSection(ep, conditions)),
  );
}
