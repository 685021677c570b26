import { describe, expect, it } from "vitest";
import { fmtMetric, metricLabel, metricText, readableReason } from "./metrics";

describe("metric names", () => {
  it("reads as words with units, never as the raw key", () => {
    expect(metricLabel("frac_below_2_76mm")).toBe("joint slices with RMSE < 2.76 mm (fraction)");
    expect(metricText("rmse_mean_mm", 1.23456)).toBe("mean joint-line error (RMSE) 1.235 mm");
    expect(metricLabel("auc_grade_3")).toBe("AUC of mNY grade 3");
    expect(metricLabel("auc_bme/iliac_upper")).toBe("AUC bme/iliac_upper");
    expect(metricLabel("val_loss")).toBe("validation loss");
  });

  it("rewrites the server's decision text", () => {
    expect(
      readableReason("frac_below_2_76mm 0.500 is below the promotion floor 0.8: stays a candidate"),
    ).toBe(
      "joint slices with RMSE < 2.76 mm (fraction) 0.500 is below the promotion floor 0.8: stays a candidate",
    );
    expect(readableReason("qwk 0.608 vs 0.601; auc_grade_2 drops by 0.030 > 0.02")).toBe(
      "quadratic weighted kappa (QWK) 0.608 vs 0.601; AUC of mNY grade 2 drops by 0.030 > 0.02",
    );
  });
});

describe("one rounding rule", () => {
  it("shows 3 decimals, as the decision text does (a table said 0.601 where the text said 0.6078)", () => {
    expect(fmtMetric(0.6078)).toBe("0.608");
    expect(fmtMetric(0.601)).toBe("0.601");
    expect(fmtMetric(1)).toBe("1.000");
    expect(fmtMetric(0.00001234)).toBe("0.000012");
    expect(fmtMetric(null)).toBe("–");
    expect(fmtMetric(Number.NaN)).toBe("–");
  });
});
