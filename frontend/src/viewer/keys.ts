// Keys a PACS user expects: ↑/↓ (and PageUp/PageDown) scroll slices wherever the focus is, Home/End jump to the
// first/last slice, except in a text field, where they move the caret. Grades change only by digits and
// explicit keys, never by arrows.
import { typing } from "../ui/dom";

/** +1 (next slice), −1 (previous), +Infinity (End: the last slice), −Infinity (Home: the first) or 0 (not a
 * slice key) for a keydown; the viewers clamp a step to their slices, so ±Infinity lands on the last/first. */
export function sliceStep(
  e: Pick<KeyboardEvent, "key" | "altKey" | "ctrlKey" | "metaKey" | "target">,
): number {
  if (e.altKey || e.ctrlKey || e.metaKey || typing(e as KeyboardEvent)) return 0;
  if (e.key === "PageDown" || e.key === "ArrowDown") return 1;
  if (e.key === "PageUp" || e.key === "ArrowUp") return -1;
  if (e.key === "End") return Infinity;
  if (e.key === "Home") return -Infinity;
  return 0;
}

/** Arrow keys on a radio button or a select change its value natively: the callers prevent that. */
export function isArrow(key: string): boolean {
  return key === "ArrowUp" || key === "ArrowDown" || key === "ArrowLeft" || key === "ArrowRight";
}
