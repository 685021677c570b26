import { describe, expect, it } from "vitest";
import type { AssignmentDetail, FormItem } from "../../api";
import type { ImagePlane } from "../../viewer/geometry";
import { crossReference } from "./linkedViews";
import { closedReason, missingText, pathAfterSubmit, ReadingModel } from "./model";
import { pickSeries } from "./series";

const item = (joint: string, lesion: string, region = "joint"): FormItem => ({
  joint,
  region,
  lesion,
  values: [0, 1],
  rating: null,
});

function assignment(modality: "MR" | "CT", definition: Record<string, unknown> = {}): AssignmentDetail {
  const form =
    modality === "CT"
      ? ["left", "right"].map((j) => ({ ...item(j, "mny_grade"), values: [0, 1, 2, 3, 4] }))
      : ["left", "right"].flatMap((j) => [item(j, "bme", "iliac_upper"), item(j, "ankylosis")]);
  return {
    key: "k1",
    case_label: "ABCD1234",
    status: "in_progress",
    aided: false,
    condition: "unaided",
    condition_label: "Unaided",
    started_at: null,
    project_id: 7,
    study_uid: "2.25.1",
    series: [
      {
        series_uid: "s-stir",
        modality: "MR",
        description: "STIR",
        frame_of_reference_uid: "",
        n_instances: 3,
      },
      { series_uid: "s-t1", modality: "MR", description: "T1", frame_of_reference_uid: "", n_instances: 3 },
    ],
    scheme: { id: 1, name: "mri_sij", version: 1, modality, form, definition },
    submitted_at: null,
  };
}

const empty = { values: [], contours: [] };

describe("reading model", () => {
  it("starts from the draft: its values and contours, the first joint", () => {
    const m = new ReadingModel(assignment("MR"), {
      values: [{ joint: "left", region: "iliac_upper", lesion: "bme", value: 1 }],
      contours: [{ joint: "right", series_uid: "s-t1", slice_index: 2, points_mm: [[1, 2, 3]] }],
    });
    expect(m.joints).toEqual(["left", "right"]);
    expect(m.joint).toBe("left");
    expect(m.values.get("left/iliac_upper/bme")).toBe(1);
    expect(m.contours.get("right", 2)).toEqual([[1, 2, 3]]);
    expect(m.missing().map((i) => `${i.joint}/${i.lesion}`)).toEqual([
      "left/ankylosis",
      "right/bme",
      "right/ankylosis",
    ]);
    expect(m.firstToGrade().lesion).toBe("ankylosis");
  });

  it("says what is missing until everything is graded, then G goes to the first item", () => {
    const m = new ReadingModel(assignment("MR"), empty);
    expect(missingText(m.missing())).toBe("4 item(s) not graded yet, first: Left BME Iliac upper");
    for (const i of m.form) m.values.set(`${i.joint}/${i.region}/${i.lesion}`, 0);
    expect(m.missing()).toEqual([]);
    expect(m.firstToGrade()).toBe(m.form[0]);
  });

  it("saves every contour in a draft but submits complete ones only, with the active time", () => {
    const m = new ReadingModel(assignment("MR"), empty);
    m.values.set("left/iliac_upper/bme", 1);
    m.contours.set("left", 0, "s-t1", [[0, 0, 0]]);
    m.contours.set("right", 1, "s-t1", [
      [0, 0, 10],
      [0, 0, 0],
    ]);
    const draft = m.draftBody();
    expect(draft.values).toEqual([{ joint: "left", region: "iliac_upper", lesion: "bme", value: 1 }]);
    expect(draft.contours.map((c) => c.joint)).toEqual(["left", "right"]);
    const body = m.submitBody(42.5);
    expect(body.contours?.map((c) => c.joint)).toEqual(["right"]);
    expect(body.duration_s).toBe(42.5);
  });

  it("switches joints round the form, edits and clears the current joint's contour", () => {
    const m = new ReadingModel(assignment("MR"), empty);
    m.contours.set("left", 3, "s-t1", [
      [0, 0, 2],
      [0, 0, 1],
      [0, 0, 0],
    ]);
    expect(m.contourInfo(3)).toBe("Left: 3 points on this slice · 1 contour(s)");
    m.removeLastPoint(3, "s-t1");
    expect(m.contourInfo(3)).toBe("Left: 2 points on this slice · 1 contour(s)");
    m.joint = m.nextJoint();
    expect(m.joint).toBe("right");
    expect(m.nextJoint()).toBe("left");
    expect(m.contourInfo(3)).toBe("Right: 0 points on this slice · 1 contour(s)");
    m.joint = "left";
    m.clearContour(3);
    expect(m.contours.get("left", 3)).toEqual([]);
    expect(m.modeText()).toBe("");
    m.editing = true;
    expect(m.modeText()).toMatch(/^Contour mode: click along the left joint line/);
  });

  it("shows the scheme's sequences for MRI, the first series and grade captions for CT", () => {
    const mri = new ReadingModel(
      assignment("MR", { acquisition: { sequences: { T1: {}, STIR: {} } } }),
      empty,
    );
    expect(mri.isCt).toBe(false);
    expect(mri.seriesUids((seq) => pickSeries(mri.assignment.series, seq))).toEqual(["s-t1", "s-stir"]);
    expect(mri.valueLabels).toBeUndefined();
    const ct = new ReadingModel(assignment("CT", { grades: { "0": "Normal", "4": "Ankylosis" } }), empty);
    expect(ct.isCt).toBe(true);
    expect(ct.seriesUids((seq) => pickSeries(ct.assignment.series, seq))).toEqual(["s-stir"]);
    expect(ct.valueLabels).toEqual({ 0: "0 Normal", 4: "4 Ankylosis" });
  });

  it("closes submitted and cancelled cases, and goes to the next case or back to the worklist", () => {
    expect(closedReason({ status: "in_progress" })).toBeNull();
    expect(closedReason({ status: "submitted" })).toBe(
      "This case is submitted; readings cannot be changed here.",
    );
    expect(closedReason({ status: "cancelled" })).toMatch(/cancelled/);
    expect(pathAfterSubmit(7, "next-key")).toBe("/read/next-key");
    expect(pathAfterSubmit(7, null)).toBe("/projects/7/worklist?done=1");
  });
});

describe("CT linked views", () => {
  // Axial images 1 mm apart at z = 0, 1, 2; 10 × 10 pixels of 1 mm.
  const planes: ImagePlane[] = [0, 1, 2].map((z) => ({
    ipp: [0, 0, z],
    iop: [1, 0, 0, 0, 1, 0],
    pixelSpacing: [1, 1],
    rows: 10,
    columns: 10,
  }));
  const coronal = {
    focalPoint: [5, 4, 1] as [number, number, number],
    position: [5, 0, 1] as [number, number, number],
    viewPlaneNormal: [0, 1, 0] as [number, number, number],
  };
  const toCanvas = (p: [number, number, number]): [number, number] => [p[0], p[1]];

  it("draws where the coronal plane cuts the axial image, and the linked point on its own image only", () => {
    const ref = crossReference(planes, 1, coronal, [3, 4, 1], toCanvas);
    expect(ref.line).not.toBeNull();
    for (const [, y] of ref.line ?? []) expect(y).toBeCloseTo(4);
    expect(ref.mark).toEqual([3, 4]);
    expect(crossReference(planes, 2, coronal, [3, 4, 1], toCanvas).mark).toBeNull();
    expect(crossReference(planes, 1, null, [3, 4, 1], toCanvas)).toEqual({ line: null, mark: null });
  });
});
