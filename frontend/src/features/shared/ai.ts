// The promoted models' pre-reads of a case, as the adjudication and AI-aided reading views show them: the AI's value and
// probabilities for one item, and the AI's joint-line contours. Pure: no DOM, no Cornerstone3D.
import type { AiPrediction } from "../../api";
import type { AiContour } from "../../api/types";
import { type ImagePlane, nearestSlice, type Vec3 } from "../../viewer/geometry";

export interface AiValue {
  /** "lesions v2" */
  model: string;
  /** The AI's value for the item (the most probable one). */
  value: number;
  /** One probability per value of the item, in the item's value order. */
  probabilities: number[];
}

export type AiItemContour = Pick<AiContour, "slice_index" | "side" | "confidence"> & {
  points_mm: Vec3[];
  model: string;
};

type Item = { joint: string; region: string; lesion: string; values: number[] };

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function argmax(values: number[]): number {
  let best = 0;
  values.forEach((v, i) => {
    if (v > values[best]) best = i;
  });
  return best;
}

/** What each promoted model says about one item (joint × region × lesion). A binary lesion output is
 * P(value 1); the CT grader gives one probability per mNY grade. Models silent on the item are left out. */
export function aiValues(ai: AiPrediction[] | undefined, item: Item): AiValue[] {
  const out: AiValue[] = [];
  for (const p of ai ?? []) {
    const model = `${p.kind} v${p.version}`;
    if (p.kind === "lesions") {
      const prob = ofJoint(p.output, item.joint)?.[`${item.lesion}/${item.region}`];
      if (!isNumber(prob) || item.values.length !== 2) continue;
      const probabilities = [1 - prob, prob];
      out.push({ model, value: item.values[prob >= 0.5 ? 1 : 0], probabilities });
    } else if (p.kind === "ctgrade") {
      const joint = ofJoint(p.output, item.joint);
      const probs = joint?.probabilities;
      if (!joint || !probs || probs.length !== item.values.length || !probs.every(isNumber)) continue;
      out.push({
        model,
        value: item.values.includes(joint.grade) ? joint.grade : item.values[argmax(probs)],
        probabilities: probs,
      });
    }
  }
  return out;
}

/** A per-joint output's entry for a scheme's joint name (the models read the left and right joints). */
function ofJoint<T>(output: { left: T; right: T }, joint: string): T | undefined {
  return joint === "left" || joint === "right" ? output[joint] : undefined;
}

/** The contour models' traced joint lines for one joint (all slices). */
export function aiContours(ai: AiPrediction[] | undefined, joint: string): AiItemContour[] {
  const out: AiItemContour[] = [];
  for (const p of ai ?? []) {
    if (p.kind !== "contour") continue;
    for (const c of p.output.contours) {
      if (c.side !== joint || c.points_mm.length < 2) continue;
      out.push({
        model: `${p.kind} v${p.version}`,
        side: c.side,
        slice_index: c.slice_index,
        points_mm: c.points_mm as Vec3[],
        confidence: c.confidence,
      });
    }
  }
  return out;
}

/** The AI contours lying in slice `index` of a series, placed by their patient position (centroid to the
 * nearest plane), so they land on the right slice of any pane whatever index the model counted in. */
export function aiContoursOnSlice(
  contours: AiItemContour[],
  planes: ImagePlane[],
  index: number,
): AiItemContour[] {
  if (!planes.length) return contours.filter((c) => c.slice_index === index);
  return contours.filter((c) => {
    const n = c.points_mm.length;
    const centroid = c.points_mm.reduce<Vec3>(
      (acc, p) => [acc[0] + p[0] / n, acc[1] + p[1] / n, acc[2] + p[2] / n],
      [0, 0, 0],
    );
    return nearestSlice(planes, centroid) === index;
  });
}

/** "P(1) = 0.83" or "grade 2 (0.61)": the AI's confidence in its value, for the readers' table. */
export function aiConfidenceText(v: AiValue, values: number[]): string {
  const i = values.indexOf(v.value);
  const p = i >= 0 ? v.probabilities[i] : NaN;
  if (values.length === 2) return `P(1) = ${v.probabilities[1].toFixed(2)}`;
  return `p = ${Number.isFinite(p) ? p.toFixed(2) : "–"}`;
}

export interface AiFormRow {
  joint: string;
  region: string;
  lesion: string;
  value: AiValue;
}

/** The AI's value for every item of a form it has an opinion on (an AI-aided read shows them all). */
export function aiForForm(ai: AiPrediction[] | undefined, form: Item[]): AiFormRow[] {
  return form.flatMap((item) =>
    aiValues(ai, item).map((value) => ({
      joint: item.joint,
      region: item.region,
      lesion: item.lesion,
      value,
    })),
  );
}
