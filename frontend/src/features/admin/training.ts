// Admin: training. Start a run, watch it live (epoch, loss, metric; polled), the history of runs, model
// versions with their gold metrics, promotion by hand or roll-back to an earlier version.
import {
  api,
  type ModelKind,
  type ModelVersion,
  type TrainingPolicy,
  type TrainingRun,
  type TrainingRunDetail,
} from "../../api";
import { ApiError } from "../../api/client";
import type { TrainingProgress } from "../../api/types";
import type { Cleanup, Params } from "../../router";
import { lineChart, responsive } from "../../ui/charts";
import { h, message } from "../../ui/dom";
import { metricLabel, readableReason } from "./metrics";
import {
  fractionDone,
  goldSummary,
  epochHistory,
  isActive,
  KIND_LABELS,
  kindsFor,
  newestRuns,
  parseConfig,
  progressLine,
  promotionAction,
  shownMetrics,
} from "./trainingModel";

const POLL_MS = 1000;

/** What each kind's promotion floor applies to (ml.services.promotion.FLOOR_METRIC). */
const FLOOR_LABELS: Record<ModelKind, string> = {
  contour: metricLabel("frac_below_2_76mm"),
  lesions: "every lesion output's AUC",
  ctgrade: "QWK",
};

const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "–");

function duration(run: TrainingRun): string {
  if (!run.started_at) return "–";
  const end = run.finished_at ? Date.parse(run.finished_at) : Date.now();
  const s = Math.max(0, Math.round((end - Date.parse(run.started_at)) / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function errorText(e: unknown): string {
  return e instanceof ApiError ? `${e.detail}${e.field ? ` (${e.field})` : ""}` : String(e);
}

/** The live card of one run: state line, progress bar, loss per epoch, cancel. */
function runCard(run: TrainingRunDetail, onCancel: () => void): HTMLElement {
  const progress = (run.progress ?? {}) as TrainingProgress;
  const history = epochHistory(run.history);
  const fraction = fractionDone(run, progress);
  const title = `Run ${run.id}: ${KIND_LABELS[run.kind]}`;
  return h(
    "article",
    { class: `card run-card state-${run.state}`, "data-run": String(run.id), "aria-label": title },
    h("h3", null, title, " ", h("span", { class: `badge ${run.state}` }, run.state)),
    h(
      "div",
      { class: "progress-row" },
      h("progress", { max: 1, value: fraction, "aria-label": `Run ${run.id} progress` }),
      ` ${Math.round(fraction * 100)}%`,
    ),
    h(
      "p",
      { class: "run-status", "data-testid": `run-${run.id}-status` },
      progressLine(run, progress, history),
    ),
    history.length
      ? h(
          "figure",
          { class: "chart" },
          h("figcaption", null, "Loss and validation metric per epoch"),
          responsive((width) =>
            lineChart(
              [
                {
                  label: "training loss",
                  colour: "#0b5cad",
                  points: history.map((r) => [r.epoch + 1, r.loss]),
                },
                // the validation loss and the first validation metric (each on its own scale)
                ...Object.keys(shownMetrics(history.at(-1)?.metrics))
                  .slice(0, 2)
                  .map((k, i) => ({
                    label: metricLabel(k),
                    colour: ["#b45309", "#15803d"][i],
                    points: history.map((r): [number, number | null] => [r.epoch + 1, r.metrics[k] ?? null]),
                  })),
              ],
              { title: `Loss and validation metrics of run ${run.id} per epoch`, xLabel: "epoch", width },
            ),
          ),
        )
      : null,
    isActive(run)
      ? h(
          "button",
          { type: "button", disabled: run.cancel_requested, onclick: onCancel },
          run.cancel_requested ? "Stopping…" : "Cancel run",
        )
      : null,
  );
}

function runsTable(runs: TrainingRun[], versions: ModelVersion[]): HTMLElement {
  if (!runs.length) return message("No training runs yet.");
  const byId = new Map(versions.map((v) => [v.id, v]));
  return h(
    "table",
    { class: "table", "data-testid": "training-runs" },
    h("caption", { class: "sr-only" }, "Training runs, newest first"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Run", "Model", "State", "Trigger", "Started by", "Created", "Duration", "Result"].map((c) =>
          h("th", { scope: "col" }, c),
        ),
      ),
    ),
    h(
      "tbody",
      null,
      runs.map((r) => {
        const version = r.model_version !== null ? byId.get(r.model_version) : undefined;
        return h(
          "tr",
          { "data-run": String(r.id) },
          h("td", null, `#${r.id}`),
          h("td", null, r.kind),
          h("td", null, h("span", { class: `badge ${r.state}` }, r.state)),
          h("td", null, r.trigger ?? ""),
          h("td", null, r.started_by ?? "–"),
          h("td", null, when(r.created_at)),
          h("td", null, duration(r)),
          h(
            "td",
            null,
            version
              ? `${version.kind} v${version.version} (${version.status})`
              : r.state === "failed"
                ? r.error || "failed"
                : "",
          ),
        );
      }),
    ),
  );
}

export async function trainingView(outlet: HTMLElement, params: Params): Promise<Cleanup> {
  const id = Number(params.id);
  const main = h("main", { class: "page training", id: "main" });
  outlet.append(main);
  const [project, schemes] = await Promise.all([api.project(id), api.schemes()]);
  const modality = schemes.find((sc) => sc.id === project.scheme_id)?.modality ?? "MR";
  const kinds = kindsFor(modality);

  const liveBox = h("div", { class: "runs-live", "data-testid": "live-runs" });
  const policiesBox = h("div", { "data-testid": "policies" });
  const runsBox = h("div");
  const versionsBox = h("div");
  const startErrors = h("div", { "aria-live": "assertive" });
  const versionErrors = h("div", { "aria-live": "assertive" });
  const kind = h(
    "select",
    { id: "train-kind" },
    kinds.map((k) => h("option", { value: k }, KIND_LABELS[k])),
  );
  const config = h("textarea", {
    id: "train-config",
    rows: 2,
    placeholder: '{"epochs": 4}',
    spellcheck: false,
  });
  main.append(
    h("h1", null, `${project.name} — training`),
    h(
      "p",
      { class: "sub" },
      h("a", { href: `/manage/projects/${id}` }, "← Project"),
      ` · ${project.scheme} · runs go to the gpu queue, one at a time per model; a new version is promoted only if it beats the current one on adjudicated gold.`,
    ),
    h(
      "section",
      { "aria-labelledby": "start-title" },
      h("h2", { id: "start-title" }, "Start a run"),
      h(
        "form",
        {
          class: "form-row",
          onsubmit: (e: Event) => {
            e.preventDefault();
            void start();
          },
        },
        h("label", null, "Model", kind),
        h("label", { class: "wide" }, "Configuration overrides (JSON, optional)", config),
        h("button", { type: "submit", class: "primary" }, "Start training"),
      ),
      startErrors,
    ),
    h(
      "section",
      { "aria-labelledby": "live-title" },
      h("h2", { id: "live-title" }, "Live progress"),
      liveBox,
    ),
    h(
      "section",
      { "aria-labelledby": "versions-title" },
      h("h2", { id: "versions-title" }, "Model versions"),
      versionErrors,
      versionsBox,
    ),
    h("section", { "aria-labelledby": "runs-title" }, h("h2", { id: "runs-title" }, "Runs"), runsBox),
    h(
      "section",
      { "aria-labelledby": "policy-title" },
      h("h2", { id: "policy-title" }, "Scheduled retraining"),
      h(
        "p",
        { class: "sub" },
        "Each night at the given hour (UTC) the project retrains a model when enough new adjudicated or confident labels have come in; a candidate is refused when any output's gold metric drops by more than the limit.",
      ),
      policiesBox,
    ),
  );

  // Runs shown live: the active ones, and every run that was active while this page was open (so its end
  // stays in view).
  const watched = new Set<number>();
  let versions: ModelVersion[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;

  const renderVersions = () => {
    if (!versions.length) {
      versionsBox.replaceChildren(message("No model versions yet: a run that succeeds registers one."));
      return;
    }
    versionsBox.replaceChildren(
      h(
        "table",
        { class: "table", "data-testid": "model-versions" },
        h("caption", { class: "sr-only" }, "Model versions with their gold metrics"),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Model", "Version", "Status", "Gold metrics", "Decision", "Promoted", ""].map((c) =>
              h("th", { scope: "col" }, c),
            ),
          ),
        ),
        h(
          "tbody",
          null,
          versions.map((v) => {
            const action = promotionAction(v, versions);
            return h(
              "tr",
              { "data-version": `${v.kind}-${v.version}` },
              h("td", null, v.kind),
              h("td", null, `v${v.version}`, h("span", { class: "sub" }, ` run #${v.training_run_id}`)),
              h("td", null, h("span", { class: `badge ${v.status}` }, v.status)),
              h("td", null, goldSummary(v)),
              h("td", null, v.comparison?.reason ? readableReason(v.comparison.reason) : "–"),
              h(
                "td",
                null,
                v.promoted_at
                  ? `${when(v.promoted_at)}${v.promoted_by ? ` by ${v.promoted_by}` : " (automatic)"}`
                  : "–",
              ),
              h("td", null, action === "promoted" ? "current" : promoteForm(v, action)),
            );
          }),
        ),
      ),
    );
  };

  const promoteForm = (v: ModelVersion, action: "roll back" | "promote") => {
    const what = `${v.kind} v${v.version}`;
    const reason = h("input", {
      required: true,
      "aria-label": `Reason to ${action === "roll back" ? "roll back to" : "promote"} ${what}`,
      placeholder: "reason",
    });
    return h(
      "form",
      {
        class: "inline-form",
        onsubmit: (e: Event) => {
          e.preventDefault();
          versionErrors.replaceChildren();
          void (async () => {
            try {
              await api.modelPromote(id, v.id, reason.value);
              await refresh();
              versionErrors.append(
                message(
                  `${what} is now the promoted ${v.kind} model; its AI pre-reads of the project's cases are being computed.`,
                ),
              );
            } catch (err) {
              versionErrors.append(message(`Not promoted: ${errorText(err)}`, "error"));
            }
          })();
        },
      },
      reason,
      h("button", { type: "submit" }, action === "roll back" ? "Roll back" : "Promote"),
    );
  };

  const renderLive = (details: TrainingRunDetail[]) => {
    liveBox.replaceChildren(
      ...(details.length
        ? details.map((run) =>
            runCard(run, () => {
              startErrors.replaceChildren();
              api
                .trainingCancel(id, run.id)
                .then(refresh)
                .catch((err: unknown) =>
                  startErrors.append(message(`Not cancelled: ${errorText(err)}`, "error")),
                );
            }),
          )
        : [message("No run in progress.")]),
    );
  };

  async function refresh(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    const [runs, fresh] = await Promise.all([api.trainingRuns(id), api.modelVersions(id)]);
    if (closed) return;
    const versionsChanged = JSON.stringify(fresh) !== JSON.stringify(versions);
    versions = fresh;
    for (const r of runs) if (isActive(r)) watched.add(r.id);
    const details = await Promise.all(
      runs.filter((r) => watched.has(r.id)).map((r) => api.trainingRun(id, r.id)),
    );
    if (closed) return;
    renderLive(details);
    const shown = newestRuns(runs, details);
    runsBox.replaceChildren(runsTable(shown, versions));
    if (versionsChanged || !versionsBox.firstChild) renderVersions();
    // Poll while something runs (a run registers its model version before it is marked finished).
    if (shown.some(isActive)) timer = setTimeout(() => void refresh().catch(retry), POLL_MS);
  }
  const retry = () => {
    if (!closed) timer = setTimeout(() => void refresh().catch(retry), POLL_MS * 3);
  };

  async function start(): Promise<void> {
    startErrors.replaceChildren();
    const overrides = parseConfig(config.value);
    if (typeof overrides === "string") {
      startErrors.append(message(overrides, "error"));
      return;
    }
    try {
      const run = await api.trainingStart(id, kind.value as ModelKind, overrides);
      watched.add(run.id);
      startErrors.append(message(`Run ${run.id} queued.`));
    } catch (e) {
      if (e instanceof ApiError && e.status === 409)
        startErrors.append(
          message(
            `Not started: ${e.detail}. Only one run per model can be queued or running; wait for it to finish or cancel it below.`,
            "error",
          ),
        );
      else startErrors.append(message(`Not started: ${errorText(e)}`, "error"));
    }
    await refresh();
  }

  const policies = await api.trainingPolicies(id).catch((): TrainingPolicy[] => []);
  policiesBox.replaceChildren(
    ...kinds.map((k) =>
      policyForm(
        id,
        k,
        policies.find((pol) => pol.kind === k),
      ),
    ),
  );
  await refresh();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
  };
}

/** The nightly retraining policy of one model kind (the model's defaults until first saved). */
function policyForm(projectId: number, kind: ModelKind, policy: TrainingPolicy | undefined): HTMLElement {
  const idp = `policy-${kind}`;
  const enabled = h("input", {
    id: `${idp}-enabled`,
    type: "checkbox",
    checked: policy?.schedule_enabled ?? false,
  });
  const hour = h("input", {
    id: `${idp}-hour`,
    type: "number",
    min: 0,
    max: 23,
    value: String(policy?.hour_utc ?? 2),
  });
  const minItems = h("input", {
    id: `${idp}-min`,
    type: "number",
    min: 0,
    value: String(policy?.min_new_items ?? 100),
  });
  const maxDrop = h("input", {
    id: `${idp}-drop`,
    type: "number",
    min: 0,
    max: 1,
    step: "0.005",
    value: String(policy?.max_output_drop ?? 0.02),
  });
  // the least gold metric to be promoted; empty: the server's default for this kind
  const floor = h("input", {
    id: `${idp}-floor`,
    type: "number",
    min: -1,
    max: 1,
    step: "0.01",
    placeholder: "default",
    value: policy?.promotion_floor == null ? "" : String(policy.promotion_floor),
  });
  const status = h("span", { role: "status" });
  return h(
    "form",
    {
      class: "form-row",
      "data-kind": kind,
      onsubmit: (e: Event) => {
        e.preventDefault();
        status.replaceChildren();
        api
          .trainingPolicyUpdate(projectId, kind, {
            schedule_enabled: enabled.checked,
            hour_utc: Number(hour.value),
            min_new_items: Number(minItems.value),
            max_output_drop: Number(maxDrop.value),
            promotion_floor: floor.value.trim() === "" ? null : Number(floor.value),
          })
          .then((saved) =>
            status.replaceChildren(
              message(
                saved.schedule_enabled
                  ? `Saved: nightly at ${saved.hour_utc}:00 UTC.`
                  : "Saved: no scheduled retraining.",
              ),
            ),
          )
          .catch((err: unknown) => status.replaceChildren(message(`Not saved: ${errorText(err)}`, "error")));
      },
    },
    h("strong", { class: "policy-kind" }, KIND_LABELS[kind]),
    h("label", { class: "check" }, enabled, " retrain nightly"),
    h("label", null, "Hour (UTC)", hour),
    h("label", null, "Minimum new labels", minItems),
    h("label", null, "Largest drop allowed", maxDrop),
    h(
      "label",
      { title: `${FLOOR_LABELS[kind]} on the adjudicated gold; below it a model stays a candidate` },
      `Promotion floor (${FLOOR_LABELS[kind]})`,
      floor,
    ),
    h("button", { type: "submit" }, "Save"),
    status,
  );
}
