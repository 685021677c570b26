// Linking an axial stack to a reformatted plane (CT: coronal): where one view's plane cuts the other's
// image, and moving a reformat camera through a point. Pure functions on patient mm, unit-tested.
import {
  add,
  columnCosine,
  dot,
  type ImagePlane,
  pixelToPatient,
  rowCosine,
  scale,
  sub,
  type Vec3,
} from "./geometry";

export interface PlaneCamera {
  focalPoint: Vec3;
  position: Vec3;
  /** Unit normal of the viewed plane. */
  viewPlaneNormal: Vec3;
}

/** The camera moved along its normal so that its plane passes through `point` (same view direction,
 * zoom and pan within the plane). */
export function cameraThrough(camera: PlaneCamera, point: Vec3): { focalPoint: Vec3; position: Vec3 } {
  const n = camera.viewPlaneNormal;
  const shift = scale(n, dot(sub(point, camera.focalPoint), n) / dot(n, n));
  return { focalPoint: add(camera.focalPoint, shift), position: add(camera.position, shift) };
}

/** Signed distance (mm) of a point from the plane through `origin` with unit normal `normal`. */
export function planeDistance(origin: Vec3, normal: Vec3, point: Vec3): number {
  return dot(sub(point, origin), normal);
}

const EPS = 1e-9;

/**
 * The segment (patient mm) where the plane through `origin` with normal `normal` cuts the image of a slice
 * (pixel centres (0, 0) to (columns − 1, rows − 1)), or null when the planes are parallel or the cut misses
 * the image. The segment lies in both planes, so it draws as a reference line in either view.
 */
export function planeCut(slice: ImagePlane, origin: Vec3, normal: Vec3): [Vec3, Vec3] | null {
  const [rowSpacing, colSpacing] = slice.pixelSpacing;
  // f(u, v) = a·u + b·v + c: signed distance from the cutting plane of pixel (column u, row v).
  const a = dot(rowCosine(slice), normal) * colSpacing;
  const b = dot(columnCosine(slice), normal) * rowSpacing;
  const c = dot(sub(slice.ipp, origin), normal);
  if (Math.abs(a) < EPS && Math.abs(b) < EPS) return null;
  const uMax = slice.columns - 1;
  const vMax = slice.rows - 1;
  const hits: [number, number][] = [];
  const push = (u: number, v: number) => {
    const inside = u >= -EPS && u <= uMax + EPS && v >= -EPS && v <= vMax + EPS;
    if (inside && !hits.some(([hu, hv]) => Math.abs(hu - u) < 1e-6 && Math.abs(hv - v) < 1e-6))
      hits.push([u, v]);
  };
  if (Math.abs(b) > EPS) {
    push(0, -c / b);
    push(uMax, -(c + a * uMax) / b);
  }
  if (Math.abs(a) > EPS) {
    push(-c / a, 0);
    push(-(c + b * vMax) / a, vMax);
  }
  if (hits.length < 2) return null;
  // The two hits furthest apart (a cut through a corner can add a third, duplicate-ish one).
  let best: [[number, number], [number, number]] = [hits[0], hits[1]];
  let bestD = -1;
  for (let i = 0; i < hits.length; i++)
    for (let j = i + 1; j < hits.length; j++) {
      const d = (hits[i][0] - hits[j][0]) ** 2 + (hits[i][1] - hits[j][1]) ** 2;
      if (d > bestD) {
        bestD = d;
        best = [hits[i], hits[j]];
      }
    }
  return [pixelToPatient(slice, best[0][0], best[0][1]), pixelToPatient(slice, best[1][0], best[1][1])];
}
