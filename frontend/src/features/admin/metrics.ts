// Readable names and units of the training and gold metrics, and the one rounding rule of the training page
// (the server's decision texts follow the same rule, ml.services.promotion.fmt_metric): 3 decimals, or 2
// significant digits for a value below 0.001 that is not 0.

interface MetricInfo {
  label: string;
  unit?: "mm";
}

const NAMED: Record<string, MetricInfo> = {
  loss: { label: "training loss" },
  train_loss: { label: "training loss" },
  val_loss: { label: "validation loss" },
  frac_below_2_76mm: { label: "joint slices with RMSE < 2.76 mm (fraction)" },
  rmse_mean_mm: { label: "mean joint-line error (RMSE)", unit: "mm" },
  rmse_p95_mm: { label: "95th-percentile joint-line error", unit: "mm" },
  val_rmse_mm: { label: "validation joint-line error (RMSE)", unit: "mm" },
  val_rmse_p95_mm: { label: "validation 95th-percentile line error", unit: "mm" },
  val_frac_below_2_76mm: { label: "validation joint slices with RMSE < 2.76 mm (fraction)" },
  mean_auc: { label: "mean AUC of the lesion outputs" },
  min_auc: { label: "lowest AUC of a lesion output" },
  val_mean_auc_majority: { label: "validation mean AUC (majority labels)" },
  qwk: { label: "quadratic weighted kappa (QWK)" },
  accuracy: { label: "accuracy" },
  macro_auc: { label: "macro-averaged AUC" },
};

/** A metric's readable name and unit: "joint slices with RMSE < 2.76 mm (fraction)", "AUC bme/iliac_upper". */
export function metricInfo(name: string): MetricInfo {
  const known = NAMED[name];
  if (known) return known;
  const grade = /^auc_grade_(\d)$/.exec(name);
  if (grade) return { label: `AUC of mNY grade ${grade[1]}` };
  const side = /^neg_rmse_(left|right)$/.exec(name);
  if (side) return { label: `${side[1]} joint-line error (negated RMSE)`, unit: "mm" };
  if (name.startsWith("auc_")) return { label: `AUC ${name.slice(4)}` };
  return { label: name.replace(/_/g, " ") };
}

export const metricLabel = (name: string): string => {
  const info = metricInfo(name);
  return info.unit ? `${info.label} (${info.unit})` : info.label;
};

/** The one rounding rule: 3 decimals; a value below 0.001 (not 0) with 2 significant digits; "–" when none. */
export function fmtMetric(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value !== 0 && Math.abs(value) < 0.001) return Number(value.toPrecision(2)).toString();
  return value.toFixed(3);
}

/** "mean joint-line error (RMSE) 1.234 mm". */
export function metricText(name: string, value: number | null | undefined): string {
  const info = metricInfo(name);
  const shown = fmtMetric(value);
  return `${info.label} ${shown}${info.unit && shown !== "–" ? ` ${info.unit}` : ""}`;
}

/** A decision text of the server with its metric names made readable ("qwk 0.608 vs 0.601" → "quadratic
 * weighted kappa (QWK) 0.608 vs 0.601"). */
export function readableReason(text: string): string {
  return text.replace(/\b(?:val_|neg_rmse_|auc_|frac_|rmse_|mean_|min_|macro_)[a-z0-9_/]*|\bqwk\b/g, (name) =>
    metricLabel(name),
  );
}
