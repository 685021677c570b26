// Shapes inside the JSON fields the OpenAPI schema leaves free-form (an AI pre-read's output, a run's progress,
// a model version's metrics); the agreement types stay here for the pages that import them from this file.
// Everything else is typed from the schema (index.ts).
import type { Vec3 } from "../viewer/geometry";
import type { components } from "./schema";

/** An AI contour (patient mm) of one joint line on one slice of the T1 series. */
export interface AiContour {
  slice_index: number;
  side: string;
  points_mm: Vec3[];
  confidence: number;
}

/** CT grader output for one joint: mNY 0–4 probabilities and the MAP grade. */
export interface AiCtJoint {
  probabilities: number[];
  grade: number;
  groupings?: Record<string, Record<string, number>>;
}

/** A training run's latest report (ml.pipelines.loop_progress + the fraction done). */
export interface TrainingProgress {
  epoch?: number;
  epochs?: number;
  step?: number;
  loss?: number | null;
  metrics?: Record<string, number | null>;
  fraction?: number;
}

export interface GoldMetrics {
  primary?: string;
  n_gold?: number;
  per_output?: Record<string, number | null>;
  [metric: string]: unknown;
}

export interface Comparison {
  promote?: boolean;
  reason?: string;
  against_version?: number | null;
  drops?: Record<string, number>;
}

/** One agreement statistic with its bootstrap CI; the report of κ/α, reader confusion and ICC. */
export type Stat = components["schemas"]["StatOutput"];
export type AgreementCell = components["schemas"]["AgreementCellOutput"];
export type AgreementReport = components["schemas"]["AgreementReportOutput"];
