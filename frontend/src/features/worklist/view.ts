// A reader's worklist: own progress, the assignments, and "next case".
import { api } from "../../api";
import { ApiError } from "../../api/client";
import { offerOpenedCase } from "../../early";
import { navigate } from "../../nav";
import type { Params } from "../../router";
import { fmt, h, message } from "../../ui/dom";
import { label } from "../shared/labels";
import { myReadings } from "./readings";

const STATUS: Record<string, string> = {
  open: "To read",
  in_progress: "In progress",
  submitted: "Submitted",
  cancelled: "Cancelled",
};

export async function worklistView(outlet: HTMLElement, params: Params): Promise<void> {
  const projectId = Number(params.id);
  const main = h("main", { class: "page", id: "main" });
  outlet.append(main);
  const [project, worklist] = await Promise.all([api.project(projectId), api.worklist(projectId)]);
  const { total = 0, submitted = 0, available = 0, waiting = 0 } = worklist.progress;
  const errors = h("div", { "aria-live": "assertive" });
  const next = h(
    "button",
    {
      class: "primary",
      type: "button",
      onclick: async () => {
        errors.replaceChildren();
        try {
          const a = await api.next(projectId);
          if (a) {
            offerOpenedCase(a);
            navigate(`/read/${a.key}`);
          } else errors.append(message("Nothing left to read right now."));
        } catch (e) {
          errors.append(message(e instanceof ApiError ? e.detail : String(e), "error"));
        }
      },
    },
    "Next case",
  );
  const done = new URLSearchParams(location.search).get("done");
  main.append(
    h("h1", null, `${project.name} — my worklist`),
    done ? message("Reading submitted. No further case is available right now.") : "",
    h(
      "div",
      { class: "progress-row" },
      h("progress", { max: total || 1, value: submitted, "aria-label": "Submitted readings" }),
      h(
        "span",
        { class: "progress-text" },
        `${submitted} of ${total} submitted · ${available} available · ${waiting} waiting for wash-out`,
      ),
      next,
    ),
    errors,
    h(
      "table",
      { class: "table" },
      h("caption", { class: "sr-only" }, "Assignments"),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, "Case"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Arm"),
          h("th", { scope: "col" }, ""),
        ),
      ),
      h(
        "tbody",
        null,
        worklist.items.map((it) =>
          h(
            "tr",
            null,
            h("td", null, it.case_label),
            h("td", null, STATUS[it.status ?? "open"] ?? it.status),
            h("td", null, it.condition_label || (it.aided ? "AI-aided" : "Unaided")),
            h(
              "td",
              null,
              it.status === "submitted" || it.status === "cancelled"
                ? ""
                : h("a", { href: `/read/${it.key}` }, it.status === "in_progress" ? "Continue" : "Open"),
            ),
          ),
        ),
      ),
    ),
  );
  next.focus();

  const readings = await api.readings(projectId).catch(() => []);
  main.append(myReadings(projectId, readings));

  // Calibration: agreement of the reader's own closed readings with the consensus, per lesion.
  const calibration = await api.calibration(projectId).catch(() => []);
  const rows = calibration.filter((c) => c.n > 0);
  if (rows.length) {
    main.append(
      h("h2", null, "My calibration"),
      h(
        "p",
        { class: "sub" },
        "Agreement: the share of your submitted readings that match the consensus, once a reading window closes" +
          " (1.00 = every item). The consensus weighs each reader by their own confusion matrix; the last column" +
          " says what it has learnt about you.",
      ),
      h(
        "table",
        { class: "table" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Lesion", "Items", "Agreement", "What it means"].map((c) => h("th", { scope: "col" }, c)),
          ),
        ),
        h(
          "tbody",
          null,
          rows.map((c) =>
            h(
              "tr",
              null,
              h("td", null, label(c.lesion)),
              h("td", null, String(c.n)),
              h("td", null, fmt(c.agreement)),
              h("td", { class: "explain", "data-testid": "calibration-explanation" }, c.explanation ?? "–"),
            ),
          ),
        ),
      ),
    );
  }
}
