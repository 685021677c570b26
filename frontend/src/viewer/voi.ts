// VOI (window/level) from the pixel data when the header's window is missing or implausible, as OHIF does:
// per series, from the percentiles of the first shown slice, so that every slice of a series is shown alike.
// The demo's MRI headers say 2047/4095 (the 12-bit range) while STIR pixels stop near 250: the brightest
// tissue was grey 14/255.

export interface VoiRange {
  lower: number;
  upper: number;
}

/** Percentiles of the data skipped at either end (noise, a few hot pixels). */
export const LOW_PERCENTILE = 0.005;
export const HIGH_PERCENTILE = 0.995;
/** At most this many pixels are sorted (a regular sample of the slice): ~2 ms for 512×512. */
const MAX_SAMPLES = 65_536;

/** [p0.5, p99.5] of the pixel values (modality units: rescaled by slope and intercept). */
export function percentileRange(
  pixels: ArrayLike<number>,
  slope = 1,
  intercept = 0,
  lo = LOW_PERCENTILE,
  hi = HIGH_PERCENTILE,
): VoiRange | null {
  const n = pixels.length;
  if (!n) return null;
  const stride = Math.max(1, Math.floor(n / MAX_SAMPLES));
  const sample = new Float64Array(Math.ceil(n / stride));
  let k = 0;
  for (let i = 0; i < n; i += stride) sample[k++] = pixels[i] * slope + intercept;
  const sorted = sample.subarray(0, k).sort();
  const at = (q: number) => sorted[Math.min(k - 1, Math.max(0, Math.round(q * (k - 1))))];
  let lower = at(lo);
  let upper = at(hi);
  if (upper <= lower) {
    // a (nearly) flat slice: widen around it so that the window is never empty
    lower = sorted[0];
    upper = sorted[k - 1] > lower ? sorted[k - 1] : lower + 1;
  }
  return { lower, upper };
}

/** A header window suits the data when it holds most of the data's range and is not much wider than it. */
export function plausibleWindow(header: VoiRange | null | undefined, data: VoiRange): boolean {
  if (!header || !Number.isFinite(header.lower) || !Number.isFinite(header.upper)) return false;
  const width = header.upper - header.lower;
  const span = data.upper - data.lower;
  if (width <= 0) return false;
  const overlap = Math.min(header.upper, data.upper) - Math.max(header.lower, data.lower);
  return overlap >= 0.5 * span && span >= 0.25 * width;
}

/** The header's window as a range (the first of several values), or null. */
export function headerWindow(
  center: number | number[] | undefined,
  width: number | number[] | undefined,
): VoiRange | null {
  const c = Array.isArray(center) ? center[0] : center;
  const w = Array.isArray(width) ? width[0] : width;
  if (c === undefined || w === undefined || !Number.isFinite(c) || !Number.isFinite(w) || w <= 0) return null;
  return { lower: c - w / 2, upper: c + w / 2 };
}

/** The series' VOI: the header's window when plausible, else the pixel percentiles. */
export function chooseVoi(
  header: VoiRange | null,
  data: VoiRange | null,
): { range: VoiRange; source: "header" | "pixels" } | null {
  if (data && !plausibleWindow(header, data)) return { range: data, source: "pixels" };
  if (header) return { range: header, source: "header" };
  return data ? { range: data, source: "pixels" } : null;
}
