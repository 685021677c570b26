// A reader's own submitted readings: listed on the worklist, reviewed and corrected on their own page, with
// the rules of correction shown (labeling.services.readings.reading_correct enforces them).
import { api, type ReadingOut } from "../../api";
import { ApiError } from "../../api/client";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { h, message, toast } from "../../ui/dom";
import { missingItems, rowsToValues, valuesToRows } from "../reading/grid";
import { renderGrid } from "../reading/gridView";

export const CORRECTION_RULES =
  "You can correct your newest reading of a case, giving a reason, until you have seen that case's " +
  "consensus in your calibration. The original reading stays on record; the correction supersedes it.";

const minutes = (s: number | null | undefined) =>
  s === null || s === undefined
    ? "–"
    : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
const when = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : "–");

/** Where one version of a reading is reviewed: by its assignment's key and its version, never an id. */
export const readingPath = (projectId: number, r: Pick<ReadingOut, "assignment" | "version">) =>
  `/projects/${projectId}/readings/${encodeURIComponent(r.assignment)}/${r.version}`;

/** The "My readings" section of the worklist. Each reading names its case by its assignment's pseudonym. */
export function myReadings(projectId: number, readings: ReadingOut[]): HTMLElement {
  const section = h("section", { "aria-label": "My readings", "data-testid": "my-readings" });
  section.append(h("h2", null, "My readings"));
  if (!readings.length) {
    section.append(message("No submitted readings yet."));
    return section;
  }
  section.append(
    h("p", { class: "sub" }, CORRECTION_RULES),
    h(
      "table",
      { class: "table" },
      h("caption", { class: "sr-only" }, "My submitted readings"),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Case", "Submitted", "Active time (m:ss)", "Version", ""].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        null,
        readings.map((r) =>
          h(
            "tr",
            { "data-reading": `${r.assignment}/${r.version}` },
            h("td", null, r.case_label),
            h("td", null, when(r.created_at)),
            h("td", null, minutes(r.duration_s)),
            h("td", null, r.superseded ? "superseded" : r.supersedes ? "correction" : "original"),
            h("td", null, h("a", { href: readingPath(projectId, r) }, r.superseded ? "View" : "Review")),
          ),
        ),
      ),
    ),
  );
  return section;
}

/** One of the reader's readings: its values in the grading grid, editable for a correction with a reason. */
export async function readingReviewView(outlet: HTMLElement, params: Params): Promise<void> {
  const projectId = Number(params.id);
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  const reading = await api.reading(params.key, Number(params.version));
  const assignment = await api.assignment(reading.assignment);
  const form = assignment.scheme.form;
  const values = rowsToValues(form, reading.values);
  const errors = h("div", { "aria-live": "assertive" });
  let edited = false;
  const grid = renderGrid(form, values, () => (edited = true));
  const reason = h("textarea", { id: "correction-reason", rows: 2 });
  const canCorrect = !reading.superseded;
  main.append(
    h("p", null, h("a", { href: `/projects/${projectId}/worklist` }, "← Worklist")),
    h("h1", null, `My reading of case ${assignment.case_label}`),
    h(
      "p",
      { class: "sub" },
      `Submitted ${when(reading.created_at)} · active time ${minutes(reading.duration_s)} · ` +
        `${reading.contours.length} contour(s)` +
        (reading.supersedes ? ` · corrects version ${reading.supersedes}: “${reading.reason ?? ""}”` : ""),
    ),
    h("p", { class: "sub", "data-testid": "rules" }, CORRECTION_RULES),
    h("section", { class: "grading review", "aria-label": "Values" }, grid.root),
  );
  if (!canCorrect) {
    for (const input of grid.root.querySelectorAll("input")) (input as HTMLInputElement).disabled = true;
    main.append(message("This reading has been corrected; only the newest version can be corrected."));
    return;
  }
  main.append(
    h(
      "form",
      {
        class: "card",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          errors.replaceChildren();
          if (!edited) return errors.append(message("Change a value to correct the reading.", "error"));
          if (missingItems(form, values).length)
            return errors.append(message("Every item needs a value.", "error"));
          if (!reason.value.trim())
            return errors.append(message("Give a reason for the correction.", "error"));
          try {
            const corrected = await api.correct(reading.assignment, reading.version, {
              values: valuesToRows(form, values).map((v) => ({ ...v })),
              contours: reading.contours.map((c) => ({
                joint: c.joint,
                series_uid: c.series_uid,
                slice_index: c.slice_index,
                points_mm: c.points_mm,
              })),
              reason: reason.value.trim(),
            });
            toast(`Correction of case ${assignment.case_label} recorded.`);
            navigate(readingPath(projectId, corrected));
          } catch (err) {
            errors.append(message(err instanceof ApiError ? err.detail : String(err), "error"));
          }
        },
      },
      h("label", { for: "correction-reason" }, "Reason for the correction"),
      reason,
      h("p", null, h("button", { type: "submit", class: "primary" }, "Submit correction")),
      errors,
    ),
  );
}
