// Pure helpers of the training panel: which kinds a project can train, how a run's progress and a version's
// gold metrics read, the per-epoch history of a run, and whether a promotion is a roll-back.
import type { EpochRow, ModelKind, ModelVersion, TrainingRun } from "../../api";

export type { EpochRow };
import type { TrainingProgress } from "../../api/types";
import { metricText } from "./metrics";

export const ACTIVE_STATES = new Set(["queued", "running"]);

export const KIND_LABELS: Record<ModelKind, string> = {
  contour: "Joint-line contours (MRI)",
  lesions: "Lesion classifier (MRI)",
  ctgrade: "CT sacroiliitis grade",
};

/** The model kinds a project of this modality trains (the API refuses the others with a 400). */
export function kindsFor(modality: string): ModelKind[] {
  return modality === "CT" ? ["ctgrade"] : ["contour", "lesions"];
}

export const isActive = (run: Pick<TrainingRun, "state">): boolean => ACTIVE_STATES.has(run.state ?? "");

/** The runs as the list answered, each replaced by its detail where one was read: the page asks for the list
 * first, so a run that ended between the two requests shows its end in the table as it does on its card. */
export function newestRuns(runs: readonly TrainingRun[], details: readonly TrainingRun[]): TrainingRun[] {
  const later = new Map(details.map((d) => [d.id, d]));
  return runs.map((r) => later.get(r.id) ?? r);
}

/** A run's epoch history, oldest first; a resumed run reports an epoch again, the later row wins. */
export function epochHistory(rows: readonly EpochRow[] | null | undefined): EpochRow[] {
  const byEpoch = new Map<number, EpochRow>();
  for (const row of rows ?? []) byEpoch.set(row.epoch, row);
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

/** The metrics worth showing: the loop also reports the epoch and the training loss, already shown. */
export function shownMetrics(
  metrics: Record<string, number | null> | undefined,
): Record<string, number | null> {
  return Object.fromEntries(
    Object.entries(metrics ?? {}).filter(([k]) => k !== "epoch" && k !== "train_loss" && k !== "loss"),
  );
}

/** One line for a run's state: "Epoch 2 of 4 · training loss 0.123 · validation joint-line error (RMSE)
 * 1.900 mm" (metrics of the last finished epoch when the current step reports none). */
export function progressLine(
  run: Pick<TrainingRun, "state" | "error">,
  progress: TrainingProgress,
  history: EpochRow[] = [],
): string {
  if (run.state === "queued") return "Queued, waiting for a worker on the gpu queue";
  const parts: string[] = [];
  if (progress.epochs) {
    const finished = progress.step === -1;
    const epoch = Math.min((progress.epoch ?? 0) + 1, progress.epochs);
    parts.push(`Epoch ${epoch} of ${progress.epochs}${finished ? " done" : ""}`);
  } else if (run.state === "running") parts.push("Preparing the data snapshot");
  if (progress.loss !== undefined) parts.push(metricText("loss", progress.loss));
  const metrics = shownMetrics(
    progress.metrics && Object.keys(progress.metrics).length ? progress.metrics : history.at(-1)?.metrics,
  );
  for (const [k, v] of Object.entries(metrics)) parts.push(metricText(k, v));
  if (run.state === "failed" && run.error) parts.push(run.error);
  if (run.state !== "running") parts.unshift(capitalise(run.state ?? ""));
  return parts.join(" · ");
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The fraction of the run done, 0–1 (a finished run is 1). */
export function fractionDone(run: Pick<TrainingRun, "state">, progress: TrainingProgress): number {
  if (run.state === "succeeded") return 1;
  return Math.max(0, Math.min(1, progress.fraction ?? 0));
}

/** "joint slices with RMSE < 2.76 mm (fraction) 0.900 (primary) · mean joint-line error (RMSE) 1.200 mm · 2 gold
 * case(s)" from a version's gold metrics. */
export function goldSummary(version: Pick<ModelVersion, "gold_metrics">): string {
  const g = version.gold_metrics ?? {};
  const primary = typeof g.primary === "string" ? g.primary : null;
  const entries = Object.entries(g).filter(
    ([k, v]) =>
      k !== "primary" && k !== "n_gold" && k !== "per_output" && (typeof v === "number" || v === null),
  ) as [string, number | null][];
  entries.sort(([a], [b]) => (a === primary ? -1 : b === primary ? 1 : a.localeCompare(b)));
  const parts = entries.map(([k, v]) => `${metricText(k, v)}${k === primary ? " (primary)" : ""}`);
  if (typeof g.n_gold === "number") parts.push(`${g.n_gold} gold case(s)`);
  return parts.join(" · ") || "not evaluated";
}

/** What promoting this version means: nothing (it is the promoted one), a roll-back to an older version,
 * or a promotion of a newer one. */
export function promotionAction(
  version: Pick<ModelVersion, "kind" | "version" | "status">,
  versions: Pick<ModelVersion, "kind" | "version" | "status">[],
): "promoted" | "roll back" | "promote" {
  if (version.status === "promoted") return "promoted";
  const current = versions.find((v) => v.kind === version.kind && v.status === "promoted");
  return current && version.version < current.version ? "roll back" : "promote";
}

/** The configuration overrides typed by the admin: a JSON object, or an error message. */
export function parseConfig(text: string): Record<string, unknown> | string {
  if (!text.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
    return 'The configuration must be a JSON object, e.g. {"epochs": 2}.';
  } catch (e) {
    return `The configuration is not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
}
