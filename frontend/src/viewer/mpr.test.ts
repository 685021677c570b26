import { describe, expect, it } from "vitest";
import { dot, type ImagePlane, nearestSlice, patientToPixel, sliceNormal, sub, type Vec3 } from "./geometry";
import { cameraThrough, planeCut, planeDistance } from "./mpr";

// An axial CT stack: rows along +x (L), columns along +y (P), slices 2.5 mm apart along +z (S).
function axial(k: number): ImagePlane {
  return {
    ipp: [-100, -80, -50 + 2.5 * k],
    iop: [1, 0, 0, 0, 1, 0],
    pixelSpacing: [0.8, 1],
    rows: 200,
    columns: 200,
  };
}
const stack = Array.from({ length: 40 }, (_, k) => axial(k));
// A coronal reformat camera (Cornerstone3D looks along +y for coronal: normal (0, −1, 0) towards the viewer).
const coronal = {
  focalPoint: [0, 0, -1] as Vec3,
  position: [0, -500, -1] as Vec3,
  viewPlaneNormal: [0, -1, 0] as Vec3,
};

const close = (a: Vec3, b: Vec3, digits = 6) => a.forEach((v, i) => expect(v).toBeCloseTo(b[i], digits));

describe("cameraThrough", () => {
  it("slides the camera along its normal only, so the clicked point lies in the new plane", () => {
    const point: Vec3 = [30, 42, -7];
    const moved = cameraThrough(coronal, point);
    close(moved.focalPoint, [0, 42, -1]);
    close(moved.position, [0, -458, -1]);
    expect(planeDistance(moved.focalPoint, coronal.viewPlaneNormal, point)).toBeCloseTo(0, 9);
    // the view direction (position − focal point) is unchanged: same zoom, no rotation
    close(sub(moved.position, moved.focalPoint), sub(coronal.position, coronal.focalPoint));
  });

  it("is a no-op for a point already in the plane", () => {
    const moved = cameraThrough(coronal, [55, 0, 80]);
    close(moved.focalPoint, coronal.focalPoint);
  });
});

describe("planeCut", () => {
  it("cuts an axial slice along the coronal plane: a left-right line at the plane's y, across the image", () => {
    const cut = planeCut(axial(10), [0, 20, 0], [0, -1, 0]);
    expect(cut).not.toBeNull();
    const [a, b] = cut!;
    const ends = [a, b].sort((p, q) => p[0] - q[0]);
    close(ends[0], [-100, 20, -25]);
    close(ends[1], [99, 20, -25]);
  });

  it("gives a segment lying in both planes, inside the image, for an oblique slice", () => {
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const oblique: ImagePlane = {
      ipp: [-90, -60, 30],
      iop: [1, 0, 0, 0, s, -c],
      pixelSpacing: [0.7, 0.9],
      rows: 180,
      columns: 210,
    };
    const origin: Vec3 = [5, 10, 12];
    const normal: Vec3 = [0, 0, 1];
    const [a, b] = planeCut(oblique, origin, normal)!;
    for (const p of [a, b]) {
      expect(planeDistance(origin, normal, p)).toBeCloseTo(0, 6);
      const [col, row, off] = patientToPixel(oblique, p);
      expect(off).toBeCloseTo(0, 6);
      expect(col).toBeGreaterThanOrEqual(-1e-6);
      expect(col).toBeLessThanOrEqual(209 + 1e-6);
      expect(row).toBeGreaterThanOrEqual(-1e-6);
      expect(row).toBeLessThanOrEqual(179 + 1e-6);
    }
    // the cut of two planes runs along the cross product of their normals: here ±x
    const d = sub(b, a);
    expect(Math.abs(d[0])).toBeCloseTo(209 * 0.9, 6);
    expect(d[1]).toBeCloseTo(0, 6);
    expect(d[2]).toBeCloseTo(0, 6);
  });

  it("is null for parallel planes and for a plane that misses the image", () => {
    expect(planeCut(axial(3), [0, 0, 0], [0, 0, 1])).toBeNull();
    expect(planeCut(axial(3), [0, 500, 0], [0, -1, 0])).toBeNull();
  });
});

describe("axial ↔ coronal linking", () => {
  it("a point picked on the coronal selects the axial slice through it, and the coronal moved to a point of that slice draws its line through the point", () => {
    const picked: Vec3 = [12, 7, -20.4]; // on the coronal image: picks slice z = -20 (k = 12)
    const k = nearestSlice(stack, picked);
    expect(k).toBe(12);
    const moved = cameraThrough(coronal, picked);
    // the axial slice's reference line on the coronal: the same segment, at the slice's height
    const [a, b] = planeCut(stack[k], moved.focalPoint, coronal.viewPlaneNormal)!;
    expect(a[2]).toBeCloseTo(-20, 6);
    expect(b[2]).toBeCloseTo(-20, 6);
    // ... through the picked point projected onto the slice (same x range, same y)
    expect(a[1]).toBeCloseTo(picked[1], 6);
    const n = sliceNormal(stack[k]);
    expect(dot(sub(a, stack[k].ipp), n)).toBeCloseTo(0, 6);
    expect(Math.min(a[0], b[0])).toBeLessThanOrEqual(picked[0]);
    expect(Math.max(a[0], b[0])).toBeGreaterThanOrEqual(picked[0]);
  });
});
