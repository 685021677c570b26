import { describe, expect, it } from "vitest";
import { agreementText, differenceIntervals, intraText, studyQuery } from "./readerStudy";

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

describe("comparing two conditions", () => {
  it("asks the API for the conditions named, else the project's default", () => {
    expect(studyQuery("phantom", null)).toBe("?reference=phantom");
    expect(studyQuery("consensus", " t1_only , t1_stir ")).toBe(
      "?reference=consensus&conditions=t1_only%2Ct1_stir",
    );
  });

  it("words agreement and intra-reader agreement with the conditions compared", () => {
    const ag = {
      first: "t1_only",
      second: "t1_stir",
      kappa_first: 0.4,
      kappa_second: 0.6,
      difference: 0.2,
      ci_lower: 0.1,
      ci_upper: 0.3,
      n_cases: 20,
      n_raters: 2,
      n_boot: 200,
      conf_level: 0.95,
      alpha_first: 0.41,
      alpha_second: 0.61,
      alpha_difference: 0.2,
      alpha_ci_lower: 0.1,
      alpha_ci_upper: 0.3,
    };
    expect(agreementText(ag, ["t1_only", "t1_stir"])).toContain("t1_only 0.40, t1_stir 0.60; change 0.20");
    const intra = {
      t1_only: { kappa: 0.5, ci_lower: 0.3, ci_upper: 0.7, n_pairs: 12, readers: [] },
      t1_stir: { kappa: null, ci_lower: null, ci_upper: null, n_pairs: 0, readers: [] },
    };
    expect(intraText(intra, ["t1_only", "t1_stir"])).toBe(
      "Intra-reader agreement (Cohen κ, repeat reads): t1_only 0.50 (95% CI 0.30 to 0.70, 12 pairs); t1_stir: no repeat reads",
    );
  });
});
