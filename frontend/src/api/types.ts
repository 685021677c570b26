// Shapes of responses the OpenAPI schema leaves free-form (views that answer plain dicts); every serializer's
// output is typed from the schema instead (index.ts).
import type { Vec3 } from "../viewer/geometry";

export interface ReadingExplanation {
  sentence: string;
  meaning: string;
  believed: number[];
  tendency: string;
  row: string | null;
}

export interface AdjudicationItem {
  case_id: number;
  case_label: string;
  study_uid: string;
  joint: string;
  region: string;
  lesion: string;
  values: number[];
  posterior: number[] | null;
  consensus_label: number | null;
  run_id: number | null;
  readings: {
    reader: string;
    session: number;
    value: number;
    reader_confusion: number[][] | null;
    /** What the consensus model believes the reader means (ml.consensus.explain); null without a model. */
    explanation: ReadingExplanation | null;
  }[];
  /** The project's certainty threshold. */
  threshold: number;
  /** The slice the readers traced this joint on (the median), where the viewer opens. */
  focus_slice: number | null;
  contours: { reader: string; session: number; series_uid: string; slice_index: number; points_mm: Vec3[] }[];
  adjudications: { value: number; reason?: string; adjudicator?: string; created_at?: string }[];
  /** Pre-reads of the case by the promoted models (adjudicators only; readers never get this field). */
  ai?: AiPrediction[];
}

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

/** One promoted model's pre-read: lesions → {joint: {"lesion/region": P(1)}}, ctgrade → {joint: AiCtJoint},
 * contour → {contours: AiContour[]}. */
export interface AiPrediction {
  kind: "contour" | "lesions" | "ctgrade";
  version: number;
  output: Record<string, unknown>;
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
  total_score: { form: string | null; icc: Stat; n_cases: number; undefined_reason?: string | null };
}
