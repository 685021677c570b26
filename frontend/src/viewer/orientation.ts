// Orientation markers (the patient direction at each edge of a pane) and the overlay's figures, as reading
// tools show them: the patient's right on the screen's left for an axial or coronal image. Pure functions.
import { columnCosine, cross, dot, type ImagePlane, rowCosine, sliceNormal, type Vec3 } from "./geometry";

/** Letters of a patient (LPS) direction, strongest first: [1, 0, 0] → "L", [0, -0.7, 0.7] → "AH"… */
export function directionLabel(v: Vec3, min = 0.3): string {
  const letters: [number, string][] = [
    [v[0], v[0] > 0 ? "L" : "R"],
    [v[1], v[1] > 0 ? "P" : "A"],
    [v[2], v[2] > 0 ? "S" : "I"],
  ];
  return letters
    .filter(([x]) => Math.abs(x) >= min)
    .sort((a, b) => Math.abs(b[0]) - Math.abs(a[0]))
    .map(([, l]) => l)
    .join("");
}

export interface Markers {
  top: string;
  bottom: string;
  left: string;
  right: string;
}

/** The markers of an image shown as stored (columns to the right, rows downwards): no flip, no rotation. */
export function markers(plane: ImagePlane): Markers {
  const r = rowCosine(plane);
  const c = columnCosine(plane);
  const neg = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];
  return {
    right: directionLabel(r),
    left: directionLabel(neg(r)),
    bottom: directionLabel(c),
    top: directionLabel(neg(c)),
  };
}

/** The markers of a volume viewport's camera (a reformat): the screen's right is viewUp × viewPlaneNormal, as
 * Cornerstone draws it (an axial or coronal reformat: the patient's left on the right, head up). */
export function cameraMarkers(viewUp: Vec3, viewPlaneNormal: Vec3): Markers {
  const right = cross(viewUp, viewPlaneNormal);
  const neg = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];
  return {
    right: directionLabel(right),
    left: directionLabel(neg(right)),
    top: directionLabel(viewUp),
    bottom: directionLabel(neg(viewUp)),
  };
}

/** Slice position along the normal (mm), as DICOM's Slice Location: the plane's distance from the origin. */
export function slicePosition(plane: ImagePlane): number {
  return dot(plane.ipp, sliceNormal(plane));
}

/** "W 400 L 40" from a VOI range. */
export function windowText(range: { lower: number; upper: number } | undefined): string {
  if (!range) return "";
  const w = range.upper - range.lower;
  const l = (range.upper + range.lower) / 2;
  const f = (x: number) => (Math.abs(w) >= 10 ? Math.round(x).toString() : x.toFixed(2));
  return `W ${f(w)} L ${f(l)}`;
}
