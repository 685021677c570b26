import { describe, expect, it } from "vitest";
import { cumulative } from "./charts";

describe("cumulative", () => {
  it("counts timestamps in time order and skips missing ones", () => {
    const steps = cumulative(["2026-01-02T00:00:00Z", null, "2026-01-01T00:00:00Z", undefined, "junk"]);
    expect(steps).toEqual([
      [Date.parse("2026-01-01T00:00:00Z"), 1],
      [Date.parse("2026-01-02T00:00:00Z"), 2],
    ]);
  });
});
