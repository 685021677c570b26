// The grading grid as data, derived from the scheme's form: one section per joint, a matrix of
// lesion × region where a lesion has several regions (quadrants), a single row where it has one.
import type { FormItem, RatingScale, ValueRow } from "../../api";

export type { FormItem, RatingScale, ValueRow };
/** Kept here for the pages that import it from the grid (the admin pages). */
export { label } from "../shared/labels";

/** item key → value; ``ratings`` item key → rating, for the items whose scheme asks for one. */
export class Values extends Map<string, number> {
  readonly ratings = new Map<string, number>();
}

const ratingsOf = (values: Map<string, number>): Map<string, number> =>
  values instanceof Values ? values.ratings : new Map();

/** The binary value a rating stands for (1 from ``present_from`` on). */
export const valueOfRating = (scale: RatingScale, rating: number): number =>
  rating >= scale.present_from ? 1 : 0;

/** Is ``rating`` a rating of the scale (an integer in its range)? */
export const validRating = (scale: RatingScale, rating: unknown): rating is number =>
  typeof rating === "number" && Number.isInteger(rating) && rating >= scale.min && rating <= scale.max;

/** The choices a reader picks from for an item: its ratings (confidence scale) or its values. */
export function choicesOf(item: FormItem): number[] {
  const scale = item.rating;
  if (scale && scale.kind === "ordinal") {
    const out: number[] = [];
    for (let r = scale.min; r <= scale.max; r++) out.push(r);
    return out;
  }
  return item.values;
}

/** Set an item's rating and the value that follows from it. */
export function setRating(values: Values, item: FormItem, rating: number): void {
  if (!item.rating) return;
  values.ratings.set(itemKey(item), rating);
  values.set(itemKey(item), valueOfRating(item.rating, rating));
}

export const itemKey = (i: { joint: string; region: string; lesion: string }): string =>
  `${i.joint}/${i.region}/${i.lesion}`;

export interface MatrixRow {
  lesion: string;
  cells: (FormItem | null)[]; // aligned with the section's `regions`
}

export interface GridSection {
  joint: string;
  regions: string[]; // columns of the matrix rows, in form order
  matrix: MatrixRow[]; // lesions with more than one region
  single: FormItem[]; // lesions with one region (joint level)
}

export interface Grid {
  sections: GridSection[];
  /** Every item in keyboard order: section by section, matrix row by row, then the single items. */
  order: FormItem[];
}

export function buildGrid(form: FormItem[]): Grid {
  const joints: string[] = [];
  for (const item of form) if (!joints.includes(item.joint)) joints.push(item.joint);
  const sections = joints.map((joint) => {
    const items = form.filter((i) => i.joint === joint);
    const lesions: string[] = [];
    for (const i of items) if (!lesions.includes(i.lesion)) lesions.push(i.lesion);
    const regionsOf = (lesion: string) => items.filter((i) => i.lesion === lesion).map((i) => i.region);
    const multi = lesions.filter((l) => regionsOf(l).length > 1);
    const regions: string[] = [];
    for (const l of multi) for (const r of regionsOf(l)) if (!regions.includes(r)) regions.push(r);
    const matrix = multi.map((lesion) => ({
      lesion,
      cells: regions.map((region) => items.find((i) => i.lesion === lesion && i.region === region) ?? null),
    }));
    const single = lesions
      .filter((l) => regionsOf(l).length === 1)
      .map((l) => items.find((i) => i.lesion === l) as FormItem);
    return { joint, regions, matrix, single };
  });
  const order: FormItem[] = [];
  for (const s of sections) {
    for (const row of s.matrix) for (const cell of row.cells) if (cell) order.push(cell);
    order.push(...s.single);
  }
  return { sections, order };
}

/** Items not answered yet: without a value, or without the rating their scheme asks for. */
export function missingItems(form: FormItem[], values: Map<string, number>): FormItem[] {
  const ratings = ratingsOf(values);
  return form.filter((i) => !values.has(itemKey(i)) || (i.rating != null && !ratings.has(itemKey(i))));
}

/** Values in the API's shape, in form order; only answered items, with their ratings where asked. */
export function valuesToRows(form: FormItem[], values: Map<string, number>): ValueRow[] {
  const ratings = ratingsOf(values);
  return form
    .filter((i) => values.has(itemKey(i)))
    .map((i) => {
      const row: ValueRow = {
        joint: i.joint,
        region: i.region,
        lesion: i.lesion,
        value: values.get(itemKey(i)) as number,
      };
      const rating = ratings.get(itemKey(i));
      if (i.rating && rating !== undefined) row.rating = rating;
      return row;
    });
}

/** Restore values (and ratings) from a draft or a reading; rows that no longer fit the form (or hold a bad
 * value or rating) are dropped. */
export function rowsToValues(form: FormItem[], rows: unknown[]): Values {
  const byKey = new Map(form.map((i) => [itemKey(i), i]));
  const values = new Values();
  for (const row of rows) {
    if (!row || typeof row !== "object") continue;
    const r = row as Partial<ValueRow>;
    if (typeof r.joint !== "string" || typeof r.region !== "string" || typeof r.lesion !== "string") continue;
    const item = byKey.get(itemKey(r as ValueRow));
    if (!item) continue;
    if (item.rating) {
      if (validRating(item.rating, r.rating)) setRating(values, item, r.rating);
    } else if (typeof r.value === "number" && item.values.includes(r.value)) {
      values.set(itemKey(item), r.value);
    }
  }
  return values;
}

/** The choice a digit key stands for on an item (a confidence rating where the scheme asks for one, else a
 * value), or null if the item has no such choice; a probability is typed in its field, not by one key. */
export function valueForKey(item: FormItem, key: string): number | null {
  if (!/^[0-9]$/.test(key) || item.rating?.kind === "probability") return null;
  const v = Number(key);
  return choicesOf(item).includes(v) ? v : null;
}

/** A choice's caption: the scale's label for a rating (e.g. "4 probably present"), else the value. */
export function choiceLabel(item: FormItem, choice: number, valueLabels?: Record<number, string>): string {
  const scaleLabel = item.rating?.labels[String(choice)];
  if (scaleLabel) return `${choice} ${scaleLabel}`;
  return valueLabels?.[choice] ?? String(choice);
}
