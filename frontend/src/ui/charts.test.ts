import { describe, expect, it } from "vitest";
import { cumulative, estimateText } from "./charts";

describe("cumulative", () => {
  it("counts timestamps in time order and skips missing ones", () => {
    const steps = cumulative(["2026-01-02T00:00:00Z", null, "2026-01-01T00:00:00Z", undefined, "junk"]);
    expect(steps).toEqual([
      [Date.parse("2026-01-01T00:00:00Z"), 1],
      [Date.parse("2026-01-02T00:00:00Z"), 2],
    ]);
  });
});

describe("estimateText", () => {
  it("writes the 95% CI beside the estimate when asked and known", () => {
    const r = { label: "Reader 1", value: 0.6234, low: 0.41, high: 0.8 };
    expect(estimateText(r, true)).toBe("0.62 [0.41, 0.80]");
    expect(estimateText(r)).toBe("0.62");
    expect(estimateText({ ...r, low: null, high: null }, true)).toBe("0.62");
    expect(estimateText({ ...r, value: null }, true)).toBe("n/a");
  });
});
