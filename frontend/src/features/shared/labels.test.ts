import { describe, expect, it } from "vitest";
import { conditionBadge } from "./labels";

describe("the reading screen's condition badge", () => {
  it("names the read's own condition, and nothing for a plain unaided read", () => {
    expect(conditionBadge({ condition: "aided", condition_label: "AI-aided", aided: true })).toBe(
      "AI-aided read",
    );
    expect(conditionBadge({ condition: "t1_only", condition_label: "T1 only" })).toBe("T1 only read");
    expect(conditionBadge({ condition: "unaided", condition_label: "Unaided" })).toBeNull();
    expect(conditionBadge({ aided: true })).toBe("aided read"); // an answer of before the conditions
    expect(conditionBadge({ condition: "t1_stir" })).toBe("t1 stir read");
  });
});
