// Shapes of responses the OpenAPI schema leaves free-form (views that answer plain dicts); every serializer's
// output is typed from the schema instead (index.ts).
import type { Vec3 } from "../viewer/geometry";

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

export interface Stat {
  value: number | null;
  ci_low: number | null;
  ci_high: number | null;
  n?: number;
}

export interface AgreementCell {
  lesion: string;
  joint: string;
  region: string;
  n_cases: number;
  n_readers: number;
  alpha: Stat;
  fleiss_kappa: Stat;
}

export interface AgreementReport {
  cells: AgreementCell[];
  intra_reader: { lesion: string; reader: string; sessions: number; kappa: Stat }[];
  readers: {
    lesion: string;
    reader: string;
    n_reads: number;
    confusion: number[][];
    counts: number[][];
    sensitivity: number | null;
    specificity: number | null;
    bias: number | null;
    spread: number | null;
  }[];
  total_score: { form: string | null; icc: Stat; n_cases: number };
}
