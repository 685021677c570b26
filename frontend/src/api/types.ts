// Aliases of schema types for the pages that import them from this file (AI pre-read parts, a run's progress,
// a version's metrics, the agreement report). Every type is the OpenAPI schema's (schema.d.ts).
import type { components } from "./schema";

/** An AI contour (patient mm) of one joint line on one slice of the T1 series. */
export type AiContour = components["schemas"]["AiContourOutput"];

/** CT grader output for one joint: mNY 0–4 probabilities and the MAP grade. */
export type AiCtJoint = components["schemas"]["CtJointOutput"];

/** A training run's latest report (ml.pipelines.loop_progress + the fraction done). */
export type TrainingProgress = components["schemas"]["TrainingProgressOutput"];
export type GoldMetrics = components["schemas"]["GoldMetricsOutput"];
export type Comparison = components["schemas"]["ComparisonOutput"];

/** One agreement statistic with its bootstrap CI; the report of κ/α, reader confusion and ICC. */
export type Stat = components["schemas"]["StatOutput"];
export type AgreementCell = components["schemas"]["AgreementCellOutput"];
export type AgreementReport = components["schemas"]["AgreementReportOutput"];
