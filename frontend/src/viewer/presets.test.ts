import { describe, expect, it } from "vitest";
import { CT_PRESETS, MR_PRESETS, presetRange, presetsFor } from "./presets";

describe("window presets", () => {
  it("uses Hounsfield windows for CT", () => {
    const bone = CT_PRESETS.find((p) => p.id === "bone")!;
    expect(presetRange(bone, { lower: 0, upper: 1 })).toEqual({ lower: -500, upper: 1300 });
    expect(presetsFor("CT")).toBe(CT_PRESETS);
  });

  it("scales MRI presets to the image's own range", () => {
    expect(presetRange(MR_PRESETS[0], { lower: 100, upper: 300 })).toEqual({ lower: 100, upper: 300 });
    const contrast = presetRange(MR_PRESETS[1], { lower: 0, upper: 1000 });
    expect(contrast.upper - contrast.lower).toBeCloseTo(600);
    expect(presetsFor("MR")).toBe(MR_PRESETS);
  });
});
