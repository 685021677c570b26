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

/** What the reading screen says of a read's condition ("AI-aided read", "T1 only read"): nothing for a plain
 * unaided read. Only the read's own condition, never anything of the case's other reads (blinding). */
export function conditionBadge(read: {
  condition?: string;
  condition_label?: string;
  aided?: boolean;
}): string | null {
  const condition = read.condition ?? (read.aided ? "aided" : "unaided");
  if (condition === "unaided") return null;
  return `${read.condition_label || condition.replace(/_/g, " ")} read`;
}
