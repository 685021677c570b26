// The reading view's state and logic, free of the DOM and of Cornerstone3D: the values and contours the
// reader has entered (from the draft), what is still missing, the joint being traced, what is saved and
// submitted, and where the reader goes next.
import type { AssignmentDetail, Draft, ReadingBody, ValueRow, ContourRow } from "../../api";
import { ContourStore } from "../shared/contours";
import { label } from "../shared/labels";
import { type FormItem, missingItems, rowsToValues, type Values, valuesToRows } from "./grid";

const worklistPath = (projectId: number) => `/projects/${projectId}/worklist`;

/** Why the assignment can no longer be read here (submitted or cancelled); null while it can. */
export function closedReason(assignment: Pick<AssignmentDetail, "status">): string | null {
  return assignment.status === "submitted" || assignment.status === "cancelled"
    ? `This case is ${assignment.status}; readings cannot be changed here.`
    : null;
}

/** Where a reader goes after submitting: the next case, else the worklist saying all is done. */
export const pathAfterSubmit = (projectId: number, nextKey: string | null): string =>
  nextKey ? `/read/${nextKey}` : `${worklistPath(projectId)}?done=1`;

/** "N item(s) not graded yet, first: …" for a non-empty list of missing items. */
export const missingText = (missing: FormItem[]): string =>
  `${missing.length} item(s) not graded yet, first: ${label(missing[0].joint)} ${label(missing[0].lesion)} ${label(missing[0].region)}`;

export class ReadingModel {
  readonly form: FormItem[];
  readonly values: Values;
  readonly contours = new ContourStore();
  /** The joints of the form, in form order (the ones a contour is traced for). */
  readonly joints: string[];
  /** The joint contours are traced for, and whether clicks on the image add points. */
  joint: string;
  editing = false;

  constructor(
    readonly assignment: AssignmentDetail,
    draft: Pick<Draft, "values" | "contours">,
  ) {
    this.form = assignment.scheme.form;
    this.values = rowsToValues(this.form, draft.values ?? []);
    this.contours.load(draft.contours ?? []);
    this.joints = [...new Set(this.form.map((i) => i.joint))];
    this.joint = this.joints[0] ?? "left";
  }

  get isCt(): boolean {
    return this.assignment.scheme.modality === "CT";
  }

  get worklistPath(): string {
    return worklistPath(this.assignment.project_id);
  }

  /** The scheme's MRI sequences (T1, STIR) in order; empty for CT. */
  get sequences(): string[] {
    const acquisition = this.assignment.scheme.definition.acquisition as Record<string, unknown> | undefined;
    return Object.keys((acquisition?.sequences as object) ?? {});
  }

  /** The scheme's grade definitions (CT: mNY grade → meaning). */
  get grades(): Record<string, string> {
    return (this.assignment.scheme.definition.grades as Record<string, string> | undefined) ?? {};
  }

  /** The captions of the CT grid's choices ("2 Sclerosis with some erosions"); none for MRI. */
  get valueLabels(): Record<number, string> | undefined {
    if (!this.isCt) return undefined;
    return Object.fromEntries(Object.entries(this.grades).map(([k, v]) => [Number(k), `${k} ${v}`]));
  }

  /** The series to show, from the assignment's: the scheme's sequences (MRI), else the first one. */
  seriesUids(pick: (sequences: string[]) => { series_uid: string }[]): string[] {
    return pick(this.isCt ? [] : this.sequences).map((s) => s.series_uid);
  }

  missing(): FormItem[] {
    return missingItems(this.form, this.values);
  }

  /** The item G goes to: the first ungraded one, else the first. */
  firstToGrade(): FormItem {
    return this.missing()[0] ?? this.form[0];
  }

  /** What a draft save sends: the values entered so far and every contour, complete or not. */
  draftBody(): { values: ValueRow[]; contours: ContourRow[] } {
    return { values: valuesToRows(this.form, this.values), contours: this.contours.rows() };
  }

  /** What a submit sends: complete contours only. */
  submitBody(durationS: number): ReadingBody {
    return {
      values: valuesToRows(this.form, this.values),
      contours: this.contours.rows(true),
      duration_s: durationS,
    };
  }

  /** The joint after the current one (J), round the form's joints. */
  nextJoint(): string {
    return this.joints[(this.joints.indexOf(this.joint) + 1) % this.joints.length];
  }

  /** Remove the last point of the current joint's contour on ``slice`` (Backspace). */
  removeLastPoint(slice: number, seriesUid: string): void {
    this.contours.set(this.joint, slice, seriesUid, this.contours.get(this.joint, slice).slice(0, -1));
  }

  /** Remove the current joint's contour on ``slice``. */
  clearContour(slice: number): void {
    this.contours.set(this.joint, slice, "", []);
  }

  /** "Left: 2 points on this slice · 1 contour(s)". */
  contourInfo(slice: number): string {
    const n = this.contours.get(this.joint, slice).length;
    return `${label(this.joint)}: ${n} point${n === 1 ? "" : "s"} on this slice · ${this.contours.rows(true).length} contour(s)`;
  }

  /** The contour-mode banner, naming the joint; empty outside contour mode. */
  modeText(): string {
    return this.editing
      ? `Contour mode: click along the ${label(this.joint).toLowerCase()} joint line to add points · C or Esc to leave`
      : "";
  }
}
