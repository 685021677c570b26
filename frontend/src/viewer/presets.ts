// Window/level presets. CT in Hounsfield units; MRI relative to the image's own range (no absolute scale).
export interface Preset {
  id: string;
  label: string;
  /** Absolute window (CT), or a window relative to the auto range: centre and width as fractions. */
  kind: "absolute" | "relative";
  center: number;
  width: number;
}

export const CT_PRESETS: Preset[] = [
  { id: "bone", label: "Bone", kind: "absolute", center: 400, width: 1800 },
  { id: "soft", label: "Soft tissue", kind: "absolute", center: 40, width: 400 },
  { id: "wide", label: "Wide", kind: "absolute", center: 300, width: 3000 },
];

export const MR_PRESETS: Preset[] = [
  { id: "auto", label: "Auto", kind: "relative", center: 0.5, width: 1 },
  { id: "contrast", label: "Contrast", kind: "relative", center: 0.45, width: 0.6 },
  { id: "bright", label: "Bright", kind: "relative", center: 0.35, width: 0.7 },
  { id: "dark", label: "Dark", kind: "relative", center: 0.6, width: 1.2 },
];

export function presetsFor(modality: string): Preset[] {
  return modality === "CT" ? CT_PRESETS : MR_PRESETS;
}

/** The VOI range [lower, upper] of a preset; `auto` is the image's own range for relative presets. */
export function presetRange(
  p: Preset,
  auto: { lower: number; upper: number },
): { lower: number; upper: number } {
  if (p.kind === "absolute") return { lower: p.center - p.width / 2, upper: p.center + p.width / 2 };
  const span = auto.upper - auto.lower;
  const c = auto.lower + p.center * span;
  const w = p.width * span;
  return { lower: c - w / 2, upper: c + w / 2 };
}
