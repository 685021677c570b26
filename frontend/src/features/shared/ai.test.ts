import { describe, expect, it } from "vitest";
import type { AiPrediction } from "../../api";
import type { ImagePlane } from "../../viewer/geometry";
import { aiConfidenceText, aiContours, aiContoursOnSlice, aiForForm, aiValues } from "./ai";

// Outputs as ml.pipelines write them (lesions: P(1) per "lesion/region"; ctgrade: mNY probabilities).
const lesions: AiPrediction = {
  kind: "lesions",
  version: 2,
  output: {
    left: { "bme/iliac_upper": 0.83, "sclerosis/joint": 0.1 },
    right: { "bme/iliac_upper": 0.2 },
    centres_px: { left: [10, 20], right: [30, 40] },
  },
};
const ct: AiPrediction = {
  kind: "ctgrade",
  version: 1,
  output: {
    left: { probabilities: [0.05, 0.1, 0.6, 0.2, 0.05], grade: 2, centre_mm: [0, 0, 0] },
    right: { probabilities: [0.7, 0.2, 0.05, 0.03, 0.02], grade: 0 },
    total_score: 2,
    mny_positive: false,
  },
};
const contour: AiPrediction = {
  kind: "contour",
  version: 4,
  output: {
    contours: [
      {
        slice_index: 5,
        side: "left",
        points_mm: [
          [0, 0, 12.2],
          [0, 5, 2.1],
        ],
        confidence: 0.9,
      },
      {
        slice_index: 5,
        side: "right",
        points_mm: [
          [9, 0, 12],
          [9, 5, 2],
        ],
        confidence: 0.8,
      },
      {
        slice_index: 6,
        side: "left",
        points_mm: [
          [0, 0, 15.1],
          [0, 5, 14.9],
        ],
        confidence: 0.7,
      },
      { slice_index: 7, side: "left", points_mm: [[0, 0, 1]], confidence: 0.7 },
    ],
  },
};

describe("aiValues", () => {
  it("turns a lesion probability into the AI's value and a probability per value", () => {
    const [v] = aiValues([lesions, contour], {
      joint: "left",
      region: "iliac_upper",
      lesion: "bme",
      values: [0, 1],
    });
    expect(v.model).toBe("lesions v2");
    expect(v.value).toBe(1);
    expect(v.probabilities[0]).toBeCloseTo(0.17);
    expect(v.probabilities[1]).toBeCloseTo(0.83);
    expect(aiConfidenceText(v, [0, 1])).toBe("P(1) = 0.83");
    const [r] = aiValues([lesions], { joint: "right", region: "iliac_upper", lesion: "bme", values: [0, 1] });
    expect(r.value).toBe(0);
  });

  it("gives the CT grader's grade and its five probabilities", () => {
    const [v] = aiValues([ct], {
      joint: "left",
      region: "joint",
      lesion: "mny_grade",
      values: [0, 1, 2, 3, 4],
    });
    expect(v).toEqual({ model: "ctgrade v1", value: 2, probabilities: [0.05, 0.1, 0.6, 0.2, 0.05] });
    expect(aiConfidenceText(v, [0, 1, 2, 3, 4])).toBe("p = 0.60");
  });

  it("leaves out models that say nothing about the item", () => {
    expect(
      aiValues(undefined, { joint: "left", region: "iliac_lower", lesion: "fat", values: [0, 1] }),
    ).toEqual([]);
    expect(
      aiValues([lesions, contour], { joint: "left", region: "iliac_lower", lesion: "fat", values: [0, 1] }),
    ).toEqual([]);
    // the CT grader's five probabilities do not fit a binary item
    expect(aiValues([ct], { joint: "left", region: "joint", lesion: "sclerosis", values: [0, 1] })).toEqual(
      [],
    );
  });
});

describe("aiContours", () => {
  it("keeps the traced lines of one joint with at least two points", () => {
    const left = aiContours([lesions, contour], "left");
    expect(left.map((c) => c.slice_index)).toEqual([5, 6]);
    expect(left[0].model).toBe("contour v4");
    expect(aiContours([contour], "right")).toHaveLength(1);
    expect(aiContours(undefined, "left")).toEqual([]);
  });

  it("places each line on the slice nearest to it in patient space, not by the model's index", () => {
    // axial-like planes 5 mm apart along +z, starting at z = 0: index k at z = 5k
    const planes: ImagePlane[] = Array.from({ length: 5 }, (_, k) => ({
      ipp: [-50, -50, 5 * k],
      iop: [1, 0, 0, 0, 1, 0],
      pixelSpacing: [1, 1],
      rows: 100,
      columns: 100,
    }));
    const left = aiContours([contour], "left");
    // centroid z 7.15 → slice 1 (z = 5); centroid z 15 → slice 3
    expect(aiContoursOnSlice(left, planes, 1).map((c) => c.slice_index)).toEqual([5]);
    expect(aiContoursOnSlice(left, planes, 3).map((c) => c.slice_index)).toEqual([6]);
    expect(aiContoursOnSlice(left, planes, 0)).toEqual([]);
    // without geometry, by index
    expect(aiContoursOnSlice(left, [], 6).map((c) => c.slice_index)).toEqual([6]);
  });
});

describe("aiForForm", () => {
  it("lists the AI's value for each form item it covers, in form order", () => {
    const form = [
      { joint: "left", region: "iliac_upper", lesion: "bme", values: [0, 1] },
      { joint: "left", region: "iliac_lower", lesion: "fat", values: [0, 1] },
      { joint: "right", region: "iliac_upper", lesion: "bme", values: [0, 1] },
    ];
    const rows = aiForForm([lesions, contour], form);
    expect(rows.map((r) => [r.joint, r.region, r.lesion, r.value.value])).toEqual([
      ["left", "iliac_upper", "bme", 1],
      ["right", "iliac_upper", "bme", 0],
    ]);
  });
});
