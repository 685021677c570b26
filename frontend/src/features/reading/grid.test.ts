import { describe, expect, it } from "vitest";
import {
  buildGrid,
  type FormItem,
  itemKey,
  missingItems,
  rowsToValues,
  valueForKey,
  valuesToRows,
} from "./grid";

const QUADRANTS = ["iliac_upper", "iliac_lower", "sacral_upper", "sacral_lower"];

/** The MRI form as the API sends it (paper (a) granularity: 14 items per joint). */
function mriForm(): FormItem[] {
  const form: FormItem[] = [];
  for (const joint of ["left", "right"]) {
    for (const lesion of ["bme", "fat", "erosion"])
      for (const region of QUADRANTS) form.push({ joint, region, lesion, values: [0, 1] });
    for (const lesion of ["sclerosis", "ankylosis"])
      form.push({ joint, region: "joint", lesion, values: [0, 1] });
  }
  return form;
}

const ctForm: FormItem[] = ["left", "right"].map((joint) => ({
  joint,
  region: "joint",
  lesion: "mny_grade",
  values: [0, 1, 2, 3, 4],
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
