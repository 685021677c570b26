import { describe, expect, it } from "vitest";
import { iccSummary } from "./iccSummary";

const none = { value: null, ci_low: null, ci_high: null, n: 0, n_boot: 0 };

describe("iccSummary", () => {
  it("says why the ICC is undefined instead of dashes", () => {
    const text = iccSummary({
      form: null,
      icc: none,
      n_cases: 0,
      undefined_reason: "not enough cases read by 2+ readers",
    });
    expect(text).toBe("total score ICC: not enough cases read by 2+ readers");
    expect(text).not.toContain("–");
  });

  it("gives a reason from the form when the server sends none", () => {
    expect(iccSummary({ form: null, icc: none, n_cases: 0 })).toContain(
      "not enough cases read by 2+ readers",
    );
    expect(iccSummary({ form: "ICC2", icc: none, n_cases: 4 })).toContain("do not vary");
  });

  it("shows the value, form, cases and CI when defined", () => {
    expect(
      iccSummary({
        form: "ICC2",
        icc: { value: 0.812, ci_low: 0.7, ci_high: 0.9, n: 25, n_boot: 200 },
        n_cases: 25,
      }),
    ).toBe("total score ICC (ICC2, 25 cases): 0.81 [95% CI 0.70, 0.90]");
  });
});
