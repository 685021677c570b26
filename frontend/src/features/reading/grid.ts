// The grading grid as data, derived from the scheme's form: one section per joint, a matrix of
// lesion × region where a lesion has several regions (quadrants), a single row where it has one.

export interface FormItem {
  joint: string;
  region: string;
  lesion: string;
  values: number[];
}

export interface ValueRow {
  joint: string;
  region: string;
  lesion: string;
  value: number;
}

export type Values = Map<string, number>;

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

export function missingItems(form: FormItem[], values: Values): FormItem[] {
  return form.filter((i) => !values.has(itemKey(i)));
}

/** Values in the API's shape, in form order; only answered items. */
export function valuesToRows(form: FormItem[], values: Values): ValueRow[] {
  return form
    .filter((i) => values.has(itemKey(i)))
    .map((i) => ({
      joint: i.joint,
      region: i.region,
      lesion: i.lesion,
      value: values.get(itemKey(i)) as number,
    }));
}

/** Restore values from a draft; rows that no longer fit the form (or hold a bad value) are dropped. */
export function rowsToValues(form: FormItem[], rows: unknown[]): Values {
  const byKey = new Map(form.map((i) => [itemKey(i), i]));
  const values: Values = new Map();
  for (const row of rows) {
    if (!row || typeof row !== "object") continue;
    const r = row as Partial<ValueRow>;
    if (typeof r.joint !== "string" || typeof r.region !== "string" || typeof r.lesion !== "string") continue;
    const item = byKey.get(itemKey(r as ValueRow));
    if (item && typeof r.value === "number" && item.values.includes(r.value))
      values.set(itemKey(item), r.value);
  }
  return values;
}

/** The value a digit key stands for on an item, or null if the item has no such value. */
export function valueForKey(item: FormItem, key: string): number | null {
  if (!/^[0-9]$/.test(key)) return null;
  const v = Number(key);
  return item.values.includes(v) ? v : null;
}

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
