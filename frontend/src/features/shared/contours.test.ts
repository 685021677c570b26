import { describe, expect, it } from "vitest";
import { ContourStore } from "./contours";

describe("ContourStore", () => {
  it("keeps one polyline per joint and slice and drops emptied ones", () => {
    const store = new ContourStore();
    store.set("left", 3, "1.2.3", [[0, 0, 10]]);
    store.set("right", 3, "1.2.3", [[5, 0, 10]]);
    store.set("left", 4, "1.2.3", [[0, 0, 9]]);
    expect(store.size).toBe(3);
    expect(
      store
        .onSlice(3)
        .map((c) => c.joint)
        .sort(),
    ).toEqual(["left", "right"]);
    store.set("left", 4, "1.2.3", []);
    expect(store.size).toBe(2);
  });

  it("submits complete contours only, superior first, rounded to micrometres", () => {
    const store = new ContourStore();
    store.set("left", 2, "1.2.3", [
      [1.23456, 0, -20],
      [2, 0, 0],
      [3, 0, 20.0004],
    ]);
    store.set("right", 2, "1.2.3", [[0, 0, 0]]);
    const rows = store.rows(true);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual({
      joint: "left",
      series_uid: "1.2.3",
      slice_index: 2,
      points_mm: [
        [3, 0, 20],
        [2, 0, 0],
        [1.235, 0, -20],
      ],
    });
    expect(store.rows()).toHaveLength(2); // a draft keeps the partial one
  });

  it("restores a draft, ignoring malformed rows", () => {
    const store = new ContourStore();
    store.load([
      {
        joint: "left",
        series_uid: "s",
        slice_index: 1,
        points_mm: [
          [1, 2, 3],
          [1, 2, "x"],
          [4, 5, 6],
        ],
      },
      { joint: "right", slice_index: "2", points_mm: [] },
      null,
    ]);
    expect(store.get("left", 1)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(store.size).toBe(1);
  });
});
