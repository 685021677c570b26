// Display names of the scheme's ids (joints, regions, lesions), shared by every page that shows them.

const LABELS: Record<string, string> = {
  bme: "BME",
  fat: "Fat",
  erosion: "Erosion",
  sclerosis: "Sclerosis",
  ankylosis: "Ankylosis",
  backfill: "Backfill",
  mny_grade: "mNY grade",
  iliac_upper: "Iliac upper",
  iliac_lower: "Iliac lower",
  sacral_upper: "Sacral upper",
  sacral_lower: "Sacral lower",
  joint: "Joint",
  left: "Left",
  right: "Right",
  upper: "Upper",
  lower: "Lower",
};

export const label = (id: string): string => LABELS[id] ?? id.replace(/_/g, " ");
