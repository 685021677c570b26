import { describe, expect, it } from "vitest";
import {
  buildGrid,
  choiceLabel,
  choicesOf,
  type FormItem,
  itemKey,
  missingItems,
  type RatingScale,
  rowsToValues,
  setRating,
  valueForKey,
  valueOfRating,
  Values,
  valuesToRows,
} from "./grid";

const QUADRANTS = ["iliac_upper", "iliac_lower", "sacral_upper", "sacral_lower"];

/** The MRI form as the API sends it (paper (a) granularity: 14 items per joint). */
function mriForm(): FormItem[] {
  const form: FormItem[] = [];
  for (const joint of ["left", "right"]) {
    for (const lesion of ["bme", "fat", "erosion"])
      for (const region of QUADRANTS) form.push({ joint, region, lesion, values: [0, 1], rating: null });
    for (const lesion of ["sclerosis", "ankylosis"])
      form.push({ joint, region: "joint", lesion, values: [0, 1], rating: null });
  }
  return form;
}

const ctForm: FormItem[] = ["left", "right"].map((joint) => ({
  joint,
  region: "joint",
  lesion: "mny_grade",
  values: [0, 1, 2, 3, 4],
  rating: null,
}));

describe("scheme → grid", () => {
  it("builds one section per joint with a lesion × quadrant matrix and joint-level rows", () => {
    const grid = buildGrid(mriForm());
    expect(grid.sections.map((s) => s.joint)).toEqual(["left", "right"]);
    const left = grid.sections[0];
    expect(left.regions).toEqual(QUADRANTS);
    expect(left.matrix.map((r) => r.lesion)).toEqual(["bme", "fat", "erosion"]);
    expect(left.matrix.every((r) => r.cells.every((c) => c !== null))).toBe(true);
    expect(left.single.map((i) => i.lesion)).toEqual(["sclerosis", "ankylosis"]);
  });

  it("keeps every item exactly once in keyboard order", () => {
    const form = mriForm();
    const grid = buildGrid(form);
    expect(grid.order).toHaveLength(28);
    expect(new Set(grid.order.map(itemKey)).size).toBe(28);
    expect(grid.order[0]).toMatchObject({ joint: "left", lesion: "bme", region: "iliac_upper" });
    expect(grid.order[14]).toMatchObject({ joint: "right", lesion: "bme", region: "iliac_upper" });
  });

  it("renders the CT form as one ordinal item per joint", () => {
    const grid = buildGrid(ctForm);
    expect(grid.sections).toHaveLength(2);
    expect(grid.sections[0].matrix).toEqual([]);
    expect(grid.sections[0].single[0].values).toEqual([0, 1, 2, 3, 4]);
  });

  it("leaves holes where a lesion lacks a region", () => {
    const form = mriForm().filter(
      (i) => !(i.joint === "left" && i.lesion === "fat" && i.region === "sacral_lower"),
    );
    const fat = buildGrid(form).sections[0].matrix[1];
    expect(fat.cells[3]).toBeNull();
  });
});

describe("values", () => {
  it("reports missing items and serialises answered ones in form order", () => {
    const form = mriForm();
    const values = new Map([
      [itemKey(form[5]), 1],
      [itemKey(form[0]), 0],
    ]);
    expect(missingItems(form, values)).toHaveLength(26);
    expect(valuesToRows(form, values)).toEqual(
      [
        { joint: "left", region: "iliac_upper", lesion: "bme", value: 0 },
        { ...form[5], values: undefined, value: 1 },
      ].map(({ joint, region, lesion, value }) => ({ joint, region, lesion, value })),
    );
  });

  it("restores a draft, dropping rows that do not fit the form", () => {
    const values = rowsToValues(ctForm, [
      { joint: "left", region: "joint", lesion: "mny_grade", value: 3 },
      { joint: "left", region: "joint", lesion: "mny_grade", value: 9 },
      { joint: "middle", region: "joint", lesion: "mny_grade", value: 1 },
      null,
      "junk",
    ]);
    expect([...values]).toEqual([["left/joint/mny_grade", 3]]);
  });

  it("maps digit keys to allowed values only", () => {
    expect(valueForKey(ctForm[0], "4")).toBe(4);
    expect(valueForKey(mriForm()[0], "4")).toBeNull();
    expect(valueForKey(mriForm()[0], "x")).toBeNull();
  });
});

/** mri_sij v2's scale as the API sends it. */
const CONFIDENCE: RatingScale = {
  name: "confidence",
  kind: "ordinal",
  min: 1,
  max: 5,
  present_from: 4,
  labels: {
    "1": "definitely absent",
    "2": "probably absent",
    "3": "equivocal",
    "4": "probably present",
    "5": "definitely present",
  },
};
const PROBABILITY: RatingScale = {
  name: "probability",
  kind: "probability",
  min: 0,
  max: 100,
  present_from: 50,
  labels: {},
};
const ratedMriForm = (): FormItem[] => mriForm().map((i) => ({ ...i, rating: CONFIDENCE }));

describe("confidence ratings (mri_sij v2)", () => {
  it("offers the ratings 1-5 as the choices of a binary item, labelled by the scale", () => {
    const item = ratedMriForm()[0];
    expect(choicesOf(item)).toEqual([1, 2, 3, 4, 5]);
    expect(choiceLabel(item, 3)).toBe("3 equivocal");
    expect(choicesOf(mriForm()[0])).toEqual([0, 1]);
    expect(choicesOf(ctForm[0])).toEqual([0, 1, 2, 3, 4]); // the mNY grade is its own rating
  });

  it("digits 1-5 set the rating and the value follows: 1-3 absent, 4-5 present", () => {
    const item = ratedMriForm()[0];
    const values = new Values();
    const called = ["1", "2", "3", "4", "5"].map((key) => {
      const rating = valueForKey(item, key) as number;
      setRating(values, item, rating);
      return [values.ratings.get(itemKey(item)), values.get(itemKey(item))];
    });
    expect(called).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 1],
      [5, 1],
    ]);
    expect(valueForKey(item, "0")).toBeNull();
    expect(valueForKey(item, "6")).toBeNull();
    expect(valueOfRating(PROBABILITY, 49)).toBe(0);
    expect(valueOfRating(PROBABILITY, 50)).toBe(1);
  });

  it("grades a rated MRI case with one key per item, as many keys as an unrated one", () => {
    const form = ratedMriForm();
    const order = buildGrid(form).order;
    const values = new Values();
    let keys = 0;
    for (const [i, item] of order.entries()) {
      const rating = valueForKey(item, String((i % 5) + 1));
      expect(rating).not.toBeNull();
      setRating(values, item, rating as number);
      keys += 1;
    }
    expect(keys).toBe(28);
    expect(missingItems(form, values)).toEqual([]);
    const rows = valuesToRows(form, values);
    expect(rows[0]).toEqual({ joint: "left", region: "iliac_upper", lesion: "bme", value: 0, rating: 1 });
    expect(rows.every((r) => r.value === (r.rating! >= 4 ? 1 : 0))).toBe(true);
  });

  it("counts an item without its rating as missing and restores ratings from a draft", () => {
    const form = ratedMriForm();
    const values = new Values();
    values.set(itemKey(form[0]), 1); // a value but no rating (e.g. an old draft): still to grade
    expect(missingItems(form, values)).toHaveLength(28);
    const restored = rowsToValues(form, [
      { joint: "left", region: "iliac_upper", lesion: "bme", value: 1, rating: 5 },
      { joint: "left", region: "iliac_lower", lesion: "bme", value: 1 },
      { joint: "left", region: "sacral_upper", lesion: "bme", value: 1, rating: 9 },
    ]);
    expect([...restored]).toEqual([["left/iliac_upper/bme", 1]]);
    expect([...restored.ratings]).toEqual([["left/iliac_upper/bme", 5]]);
  });

  it("takes a probability typed in its field, not by one digit", () => {
    const item: FormItem = { ...mriForm()[0], rating: PROBABILITY };
    expect(valueForKey(item, "7")).toBeNull();
    const values = new Values();
    setRating(values, item, 72);
    expect(valuesToRows([item], values)).toEqual([
      { joint: "left", region: "iliac_upper", lesion: "bme", value: 1, rating: 72 },
    ]);
    expect(rowsToValues([item], [{ ...valuesToRows([item], values)[0], rating: 101 }]).size).toBe(0);
  });
});
