import { describe, expect, it } from "vitest";
import { differenceIntervals } from "./readerStudy";

const diff = (reader: string | null, estimate: number) => ({
  first: "aided",
  second: "unaided",
  estimate,
  ci_lower: estimate - 0.1,
  ci_upper: estimate + 0.1,
  p_value: 0.2,
  reader,
});

describe("differenceIntervals", () => {
  it("lists each reader's difference, then the all-reader estimate last", () => {
    const fixed = {
      conf_level: 0.95,
      global_test: { statistic: "X2", value: 1, df1: 1, df2: null, p_value: 0.3 },
      differences: [],
      condition_estimates: [],
      reader_differences: [diff("Reader 1", 0.05), diff("Reader 2", -0.02)],
    };
    const rows = differenceIntervals(fixed, diff(null, 0.015));
    expect(rows.map((r) => r.label)).toEqual(["Reader 1", "Reader 2", "All readers (OR–Hillis)"]);
    expect(rows[1].value).toBe(-0.02);
    expect(rows[1].low).toBeCloseTo(-0.12, 12);
    expect(rows[1].high).toBeCloseTo(0.08, 12);
    expect(rows[2].value).toBe(0.015);
  });
});
