import { describe, expect, it } from "vitest";
import {
  type ImagePlane,
  nearestSlice,
  orientSuperiorFirst,
  patientToPixel,
  pixelToPatient,
  polylineLength,
  projectOntoPlane,
  slicePositions,
  syncedSliceIndex,
  type Vec3,
} from "./geometry";

// A tilted semicoronal stack like the phantoms: rows along +x, columns mostly along -z.
const c = Math.cos(0.12);
const s = Math.sin(0.12);
function plane(k: number, spacing = 3): ImagePlane {
  const normal: Vec3 = [0, c, s]; // row × column
  return {
    ipp: [-132 + 0, -37 + normal[1] * spacing * k, 136 + normal[2] * spacing * k],
    iop: [1, 0, 0, 0, s, -c],
    pixelSpacing: [0.8, 0.75],
    rows: 320,
    columns: 300,
  };
}

describe("pixel ↔ patient", () => {
  it("maps the first pixel to ImagePositionPatient", () => {
    const p = plane(0);
    expect(pixelToPatient(p, 0, 0)).toEqual(p.ipp);
  });

  it("steps a column along the row cosine by the column spacing", () => {
    const p = plane(2);
    const a = pixelToPatient(p, 10, 5);
    const b = pixelToPatient(p, 11, 5);
    expect(b[0] - a[0]).toBeCloseTo(0.75);
    const down = pixelToPatient(p, 10, 6);
    expect(down[2] - a[2]).toBeCloseTo(-c * 0.8); // one row down is inferior
  });

  it("round-trips with patientToPixel, with zero distance in plane", () => {
    const p = plane(4);
    for (const [col, row] of [
      [0, 0],
      [12.5, 200.25],
      [299, 319],
    ]) {
      const [c2, r2, d] = patientToPixel(p, pixelToPatient(p, col, row));
      expect(c2).toBeCloseTo(col, 9);
      expect(r2).toBeCloseTo(row, 9);
      expect(d).toBeCloseTo(0, 9);
    }
  });

  it("measures the distance of an off-plane point and projects it back", () => {
    const p = plane(1);
    const inPlane = pixelToPatient(p, 40, 50);
    const n: Vec3 = [0, c, s]; // row × column
    const off: Vec3 = [inPlane[0], inPlane[1] + 2 * n[1], inPlane[2] + 2 * n[2]];
    const [, , d] = patientToPixel(p, off);
    expect(Math.abs(d)).toBeCloseTo(2, 6);
    const back = projectOntoPlane(p, off);
    back.forEach((v, i) => expect(v).toBeCloseTo(inPlane[i], 6));
  });
});

describe("slices", () => {
  const stack = [0, 1, 2, 3, 4].map((k) => plane(k));

  it("orders slice positions along the normal", () => {
    const pos = slicePositions(stack);
    for (let i = 1; i < pos.length; i++) expect(Math.abs(pos[i] - pos[i - 1])).toBeCloseTo(3, 6);
  });

  it("finds the nearest slice to a point", () => {
    const point = pixelToPatient(stack[3], 100, 100);
    expect(nearestSlice(stack, point)).toBe(3);
  });

  it("synchronises identical geometry index to index", () => {
    for (let i = 0; i < stack.length; i++) expect(syncedSliceIndex(stack, i, stack)).toBe(i);
  });

  it("synchronises a finer stack by position", () => {
    const fine = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => plane(k, 1.5));
    expect(syncedSliceIndex(stack, 2, fine)).toBe(4);
    expect(syncedSliceIndex(fine, 7, stack)).toBe(3); // 10.5 mm: nearest is 9 mm
    expect(syncedSliceIndex(stack, 99, fine)).toBe(8);
  });
});

describe("contours", () => {
  it("orients superior first", () => {
    const pts: Vec3[] = [
      [0, 0, -10],
      [1, 0, 0],
      [2, 0, 10],
    ];
    expect(orientSuperiorFirst(pts)[0]).toEqual([2, 0, 10]);
    expect(orientSuperiorFirst(orientSuperiorFirst(pts))).toEqual(orientSuperiorFirst(pts));
  });

  it("measures polyline length", () => {
    expect(
      polylineLength([
        [0, 0, 0],
        [3, 4, 0],
        [3, 4, 12],
      ]),
    ).toBeCloseTo(17);
  });
});
