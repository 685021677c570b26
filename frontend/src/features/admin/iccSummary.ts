// The agreement page's one-line ICC of the total score, saying why when it is undefined.
import type { AgreementReport } from "../../api/types";
import { fmt } from "../../ui/dom";

export function iccSummary(total: AgreementReport["total_score"]): string {
  const { value, ci_low, ci_high } = total.icc;
  if (value === null) {
    const why =
      total.undefined_reason ??
      (total.form === null
        ? "not enough cases read by 2+ readers"
        : "total scores do not vary between cases");
    return `total score ICC: ${why}`;
  }
  const ci = ci_low !== null && ci_high !== null ? ` [95% CI ${fmt(ci_low)}, ${fmt(ci_high)}]` : "";
  return `total score ICC (${total.form}, ${total.n_cases} cases): ${fmt(value)}${ci}`;
}
