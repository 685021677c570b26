import { describe, expect, it } from "vitest";
import type { ImagePlane } from "./geometry";
import { cameraMarkers, directionLabel, markers, slicePosition, windowText } from "./orientation";

const plane = (iop: number[], ipp = [0, 0, 0]): ImagePlane => ({
  ipp: ipp as ImagePlane["ipp"],
  iop: iop as ImagePlane["iop"],
  pixelSpacing: [1, 1],
  rows: 10,
  columns: 10,
});

describe("orientation markers", () => {
  it("of a reformat's camera, with Cornerstone's axial, coronal and sagittal cameras", () => {
    expect(cameraMarkers([0, -1, 0], [0, 0, -1])).toEqual({ left: "R", right: "L", top: "A", bottom: "P" });
    expect(cameraMarkers([0, 0, 1], [0, -1, 0])).toEqual({ left: "R", right: "L", top: "S", bottom: "I" });
    expect(cameraMarkers([0, 0, 1], [1, 0, 0])).toEqual({ left: "A", right: "P", top: "S", bottom: "I" });
  });
  it("axial: the patient's right on the left, anterior at the top", () => {
    expect(markers(plane([1, 0, 0, 0, 1, 0]))).toEqual({ left: "R", right: "L", top: "A", bottom: "P" });
  });
  it("coronal: right on the left, superior at the top", () => {
    expect(markers(plane([1, 0, 0, 0, 0, -1]))).toEqual({ left: "R", right: "L", top: "S", bottom: "I" });
  });
  it("oblique: the strongest direction first", () => {
    expect(directionLabel([0, -0.8, 0.6])).toBe("AS");
    expect(directionLabel([0.95, 0.1, 0])).toBe("L");
  });
});

describe("overlay figures", () => {
  it("slice position along the normal", () => {
    expect(slicePosition(plane([1, 0, 0, 0, 1, 0], [-100, -80, 42.5]))).toBe(42.5);
  });
  it("window and level", () => {
    expect(windowText({ lower: -500, upper: 1300 })).toBe("W 1800 L 400");
    expect(windowText({ lower: 0.1, upper: 0.9 })).toBe("W 0.80 L 0.50");
    expect(windowText(undefined)).toBe("");
  });
});
