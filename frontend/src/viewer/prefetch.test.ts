import { describe, expect, it } from "vitest";
import { prefetchOrder } from "./prefetch";

describe("prefetchOrder", () => {
  it("interleaves the panes, nearest slices first, and leaves out the shown ones", () => {
    const t1 = ["a0", "a1", "a2", "a3", "a4"];
    const stir = ["b0", "b1", "b2", "b3", "b4"];
    expect(prefetchOrder([t1, stir], [1, 1])).toEqual(["a2", "a0", "b2", "b0", "a3", "b3", "a4", "b4"]);
  });

  it("handles stacks of different lengths and a shown slice at the end", () => {
    expect(prefetchOrder([["a0", "a1", "a2"], ["b0"]], [2, 0])).toEqual(["a1", "a0"]);
    expect(prefetchOrder([], [])).toEqual([]);
  });
});
