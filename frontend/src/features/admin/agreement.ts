// Agreement dashboard: α / Fleiss κ with bootstrap CIs per lesion × region × joint, reader confusion heat
// maps, intra-reader κ from repeated sessions, total-score ICC.
import { api } from "../../api";
import { untilReady } from "../../api/client";
import type { AgreementCell, AgreementReport } from "../../api/types";
import type { Params } from "../../router";
import { cumulative, forest, heatmap, type Interval, progressChart, responsive } from "../../ui/charts";
import { iccSummary } from "./iccSummary";
import { fmt, h, message } from "../../ui/dom";
import { label } from "../reading/grid";

export function cellIntervals(
  cells: AgreementCell[],
  lesion: string,
  stat: "alpha" | "fleiss_kappa",
): Interval[] {
  return cells
    .filter((c) => c.lesion === lesion)
    .map((c) => ({
      label: `${label(c.joint)} ${c.region === "joint" ? "" : label(c.region)} (n=${c.n_cases})`.replace(
        "  ",
        " ",
      ),
      value: c[stat].value,
      low: c[stat].ci_low,
      high: c[stat].ci_high,
      colour: c.joint === "left" ? "#0b5cad" : "#b45309",
    }));
}

export async function agreementView(outlet: HTMLElement, params: Params): Promise<void> {
  const id = Number(params.id);
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  const project = await api.project(id);
  main.append(
    h("h1", null, `${project.name} — agreement`),
    message("Computing the agreement report on the worker (bootstrap CIs)…"),
  );
  const answer = await untilReady(() => api.agreement(id, 200));
  main.lastElementChild?.remove();
  if (answer.status !== "ready") {
    main.append(
      message("The agreement report is still being computed; reload this page in a minute.", "error"),
    );
    return;
  }
  const report: AgreementReport = answer;
  const lesions = [...new Set(report.cells.map((c) => c.lesion))];
  main.append(
    h(
      "p",
      { class: "sub", "data-current": String(report.current) },
      `Readings as of ${new Date(report.as_of).toLocaleString()}`,
      report.current ? "" : " · newer readings are being analysed: reload to see them",
      " · ",
      h("a", { href: `/api/projects/${id}/agreement.csv` }, "Download CSV"),
      ` · ${iccSummary(report.total_score)}`,
    ),
    h("h2", null, "Inter-reader agreement (Krippendorff α, 95% CI)"),
  );
  for (const lesion of lesions) {
    const rows = cellIntervals(report.cells, lesion, "alpha");
    main.append(
      h(
        "figure",
        { class: "chart", "data-lesion": lesion },
        h("figcaption", null, label(lesion)),
        responsive((width) =>
          forest(rows, { title: `Krippendorff alpha for ${label(lesion)} per joint and region`, width }),
        ),
      ),
    );
  }
  main.append(h("h2", null, "Fleiss κ (95% CI)"));
  const kappaRows = lesions.flatMap((l) =>
    cellIntervals(report.cells, l, "fleiss_kappa").map((r) => ({ ...r, label: `${label(l)} · ${r.label}` })),
  );
  main.append(
    h(
      "figure",
      { class: "chart" },
      responsive((width) => forest(kappaRows, { title: "Fleiss kappa per lesion, joint and region", width })),
    ),
  );

  main.append(h("h2", null, "Intra-reader agreement (κ between sessions, 95% CI)"));
  if (report.intra_reader.length) {
    main.append(
      h(
        "figure",
        { class: "chart" },
        responsive((width) =>
          forest(
            report.intra_reader.map((r) => ({
              label: `${r.reader} · ${label(r.lesion)} (${r.sessions} sessions)`,
              value: r.kappa.value,
              low: r.kappa.ci_low,
              high: r.kappa.ci_high,
            })),
            { title: "Intra-reader kappa (95% CI) per reader and lesion", width, ci: true },
          ),
        ),
      ),
    );
  } else main.append(message("No repeated readings yet."));

  const reliability = await api.contourReliability(id).catch(() => []);
  main.append(h("h2", null, "Contour reliability (distance to the consensus contour)"));
  main.append(
    reliability.length
      ? h(
          "table",
          { class: "table" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              ["Reader", "Contours", "Mean (mm)", "95th percentile (mm)"].map((c) =>
                h("th", { scope: "col" }, c),
              ),
            ),
          ),
          h(
            "tbody",
            null,
            reliability.map((r) =>
              h(
                "tr",
                null,
                h("td", null, r.reader),
                h("td", null, String(r.n_contours)),
                h("td", null, fmt(r.mean_mm, 1)),
                h("td", null, fmt(r.p95_mm, 1)),
              ),
            ),
          ),
        )
      : message("No contour consensus yet."),
  );

  main.append(h("h2", null, "Reading progress"));
  const assignments = await api.assignments(id).catch(() => []);
  const submitted = assignments.filter((a) => a.status !== "cancelled");
  main.append(
    h(
      "figure",
      { class: "chart" },
      h(
        "figcaption",
        null,
        `${assignments.filter((a) => a.submitted_at).length} of ${submitted.length} assignments submitted`,
      ),
      responsive((width) =>
        progressChart(cumulative(assignments.map((a) => a.submitted_at)), {
          title: "Submitted readings over time",
          total: submitted.length,
          width,
        }),
      ),
    ),
  );

  main.append(h("h2", null, "Reader confusion (consensus → reader)"));
  if (report.readers.length) {
    main.append(
      h(
        "div",
        { class: "heatmaps" },
        report.readers.map((r) =>
          h(
            "figure",
            { class: "chart" },
            h(
              "figcaption",
              null,
              `${r.reader} · ${label(r.lesion)} · ${r.n_reads} reads${r.sensitivity !== null ? ` · sens ${fmt(r.sensitivity)} spec ${fmt(r.specificity)}` : ""}`,
            ),
            heatmap(r.confusion, {
              title: `Confusion of ${r.reader} for ${label(r.lesion)}`,
              labels: r.confusion.map((_, i) => String(i)),
            }),
          ),
        ),
      ),
    );
  } else main.append(message("No consensus run yet."));
}
