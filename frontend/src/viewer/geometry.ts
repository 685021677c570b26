// Pixel ↔ patient (LPS, mm) geometry from the DICOM image plane module, and slice bookkeeping.
// Pure functions: no Cornerstone3D, so they are unit-tested and shared by the viewer and the overlays.

export type Vec3 = [number, number, number];

export interface ImagePlane {
  /** ImagePositionPatient: the centre of the first transmitted pixel (row 0, column 0). */
  ipp: Vec3;
  /** ImageOrientationPatient: row direction cosine (along a row, columns increase), then column direction. */
  iop: [number, number, number, number, number, number];
  /** PixelSpacing: [row spacing (between rows), column spacing (between columns)] in mm. */
  pixelSpacing: [number, number];
  rows: number;
  columns: number;
}

export const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const scale = (a: Vec3, s: number): Vec3 => [a[0] * s, a[1] * s, a[2] * s];
export const cross = (a: Vec3, b: Vec3): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];

export function rowCosine(p: ImagePlane): Vec3 {
  return [p.iop[0], p.iop[1], p.iop[2]];
}

export function columnCosine(p: ImagePlane): Vec3 {
  return [p.iop[3], p.iop[4], p.iop[5]];
}

export function sliceNormal(p: ImagePlane): Vec3 {
  return cross(rowCosine(p), columnCosine(p));
}

/** Patient position (mm) of the pixel at (column, row), fractional allowed (DICOM PS3.3 C.7.6.2.1.1). */
export function pixelToPatient(p: ImagePlane, column: number, row: number): Vec3 {
  const [rowSpacing, colSpacing] = p.pixelSpacing;
  return add(add(p.ipp, scale(rowCosine(p), column * colSpacing)), scale(columnCosine(p), row * rowSpacing));
}

/** (column, row, distance from the plane in mm) of a patient position: the inverse of pixelToPatient. */
export function patientToPixel(p: ImagePlane, point: Vec3): [number, number, number] {
  const d = sub(point, p.ipp);
  const [rowSpacing, colSpacing] = p.pixelSpacing;
  return [dot(d, rowCosine(p)) / colSpacing, dot(d, columnCosine(p)) / rowSpacing, dot(d, sliceNormal(p))];
}

/** Orthogonal projection of a patient point onto the plane of a slice. */
export function projectOntoPlane(p: ImagePlane, point: Vec3): Vec3 {
  const n = sliceNormal(p);
  return sub(point, scale(n, dot(sub(point, p.ipp), n)));
}

/** Position of each slice along the common slice normal (mm). */
export function slicePositions(planes: ImagePlane[]): number[] {
  if (!planes.length) return [];
  const n = sliceNormal(planes[0]);
  return planes.map((p) => dot(p.ipp, n));
}

/** Order planes along their normal (ascending), as InstanceNumber should but need not. */
export function sortPlanes<T extends { plane: ImagePlane }>(items: T[]): T[] {
  if (!items.length) return items;
  const n = sliceNormal(items[0].plane);
  return [...items].sort((a, b) => dot(a.plane.ipp, n) - dot(b.plane.ipp, n));
}

/** Index of the slice nearest to a patient point (by distance along the normal). */
export function nearestSlice(planes: ImagePlane[], point: Vec3): number {
  let best = 0;
  let bestDistance = Infinity;
  planes.forEach((p, i) => {
    const distance = Math.abs(dot(sub(point, p.ipp), sliceNormal(p)));
    if (distance < bestDistance) {
      bestDistance = distance;
      best = i;
    }
  });
  return best;
}

/**
 * Slice synchronisation: the index in `target` whose plane is nearest to slice `index` of `source`.
 * Identical geometry (T1 and STIR of one study) maps i → i; different spacing maps by position.
 */
export function syncedSliceIndex(source: ImagePlane[], index: number, target: ImagePlane[]): number {
  if (!source.length || !target.length) return 0;
  const i = Math.min(Math.max(index, 0), source.length - 1);
  const p = source[i];
  const centre = pixelToPatient(p, (p.columns - 1) / 2, (p.rows - 1) / 2);
  return nearestSlice(target, centre);
}

/** An open contour runs start → end, superior → inferior: +z is superior in LPS. */
export function orientSuperiorFirst(points: Vec3[]): Vec3[] {
  if (points.length < 2) return points;
  return points[0][2] >= points[points.length - 1][2] ? points : [...points].reverse();
}

export function polylineLength(points: Vec3[]): number {
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const d = sub(points[i], points[i - 1]);
    total += Math.sqrt(dot(d, d));
  }
  return total;
}

export const round3 = (v: Vec3): Vec3 => [
  Math.round(v[0] * 1000) / 1000,
  Math.round(v[1] * 1000) / 1000,
  Math.round(v[2] * 1000) / 1000,
];
