"""The reader-study report as one self-contained HTML page: methods, design, numbers with CIs, inline SVG figures.

No script, no external style sheet or font: the file opens offline and can be archived with a submission.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLOURS = {"unaided": "#4c6a92", "aided": "#d9822b"}
PALETTE = ("#4c6a92", "#d9822b", "#5b8c5a", "#8e5ea2")  # conditions in the order compared


def _colour(cond: str, index: int) -> str:
    return COLOURS.get(cond, PALETTE[index % len(PALETTE)])


def _pair(result: dict[str, Any]) -> tuple[str, str]:
    """The two compared conditions (older results: unaided, aided)."""
    first, second = (result.get("conditions") or ["unaided", "aided"])[:2]
    return str(first), str(second)


REFERENCES = [
    "Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy for multiple readers and multiple "
    "tests: an ANOVA approach with dependent observations. Commun Stat Simul Comput 1995;24:285–308.",
    "Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS. A comparison of the Dorfman–Berbaum–Metz and "
    "Obuchowski–Rockette methods for receiver operating characteristic (ROC) data. Stat Med 2005;24:1579–1607.",
    "Hillis SL. A comparison of denominator degrees of freedom methods for multiple observer ROC analysis. "
    "Stat Med 2007;26:596–619.",
    "Efron B. The Jackknife, the Bootstrap and Other Resampling Plans. Philadelphia: SIAM; 1982.",
    "Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull 1971;76:378–382.",
    "Smith BJ, Hillis SL. Multi-reader multi-case analysis of variance software for diagnostic performance "
    "comparison of imaging modalities. Proc SPIE 2020;11316:113160K (MRMCaov).",
    "Krippendorff K. Content Analysis: An Introduction to Its Methodology. 2nd ed. Thousand Oaks: Sage; 2004.",
]


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _ci(lo: float | None, hi: float | None, digits: int = 3) -> str:
    return f"{_f(lo, digits)} to {_f(hi, digits)}"


def _roc_svg(roc: dict[str, Any], size: int = 320, pair: tuple[str, str] = ("unaided", "aided")) -> str:
    pad = 36
    inner = size - 2 * pad

    def path(fpr: list[float], tpr: list[float]) -> str:
        pts = " ".join(
            f"{pad + x * inner:.1f},{pad + (1 - y) * inner:.1f}" for x, y in zip(fpr, tpr, strict=True)
        )
        return f"M{pts.replace(' ', ' L')}"

    parts = [
        f'<svg data-figure="roc" role="img" aria-label="ROC curves per reader and averaged, {escape(pair[1])} vs {escape(pair[0])}" '
        f'width="{size}" height="{size}" viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad + inner}" x2="{pad + inner}" y2="{pad}" stroke="#ccc" stroke-dasharray="4 3"/>',
    ]
    for index, (cond, curves) in enumerate(roc.items()):
        colour = _colour(cond, index)
        for reader, c in curves["readers"].items():
            parts.append(
                f'<path class="roc-reader" d="{path(c["fpr"], c["tpr"])}" fill="none" stroke="{colour}" '
                f'stroke-opacity="0.35" stroke-width="1"><title>{escape(reader)}, {escape(cond)}</title></path>'
            )
        avg = curves["average"]
        parts.append(
            f'<path class="roc-average" data-condition="{escape(cond)}" d="{path(avg["fpr"], avg["tpr"])}" '
            f'fill="none" stroke="{colour}" stroke-width="2.5"><title>reader average, {escape(cond)}</title></path>'
        )
    parts += [
        f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" font-size="11">1 − specificity</text>',
        f'<text x="12" y="{size / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 12 {size / 2})">'
        "sensitivity</text>",
    ]
    for i, cond in enumerate(roc):
        y = pad + inner - 12 - 14 * i
        parts.append(
            f'<line x1="{pad + inner - 90}" y1="{y}" x2="{pad + inner - 70}" y2="{y}" '
            f'stroke="{_colour(cond, i)}" stroke-width="2.5"/>'
            f'<text x="{pad + inner - 66}" y="{y + 4}" font-size="11">{escape(cond)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _forest_svg(
    per_reader: list[dict[str, Any]],
    overall: dict[str, Any],
    width: int = 460,
    pair: tuple[str, str] = ("unaided", "aided"),
) -> str:
    """Rows with no estimate (None: 0/0 in the analysis) are left out; an estimate with no interval is a point."""
    rows = [(d["reader"], d["estimate"], d["ci_lower"], d["ci_upper"], False) for d in per_reader]
    rows.append(("All readers", overall["estimate"], overall["ci_lower"], overall["ci_upper"], True))
    rows = [r for r in rows if r[1] is not None]
    ends = [v for r in rows for v in (r[1], r[2], r[3]) if v is not None]
    lo = min([*ends, 0.0])
    hi = max([*ends, 0.0])
    span = (hi - lo) or 1.0
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    left, right, step = 110, width - 20, 22
    height = 30 + step * len(rows) + 30

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    parts = [
        f'<svg data-figure="forest" role="img" aria-label="Per-reader AUC difference, {escape(pair[1])} minus {escape(pair[0])}, with '
        f'95% CIs" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{x(0):.1f}" y1="20" x2="{x(0):.1f}" y2="{height - 30}" stroke="#999" stroke-dasharray="4 3"/>',
    ]
    for i, (name, est, a, b, total) in enumerate(rows):
        y = 30 + step * i
        title = f"<title>{est:.3f} ({_ci(a, b)})</title>"
        a, b = (est, est) if a is None or b is None else (a, b)
        parts.append(
            f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" font-size="11">{escape(str(name))}</text>'
        )
        parts.append(f'<line x1="{x(a):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" stroke="#333"/>')
        if total:
            parts.append(
                f'<polygon class="forest-total" points="{x(a) - 3:.1f},{y} {x(est):.1f},{y - 6} {x(b) + 3:.1f},{y} '
                f'{x(est):.1f},{y + 6}" fill="#d9822b">{title}</polygon>'
            )
        else:
            parts.append(
                f'<rect class="forest-reader" x="{x(est) - 4:.1f}" y="{y - 4}" width="8" height="8" fill="#4c6a92">'
                f"{title}</rect>"
            )
    axis_y = height - 22
    for v in (lo, 0.0, hi):
        parts.append(
            f'<text x="{x(v):.1f}" y="{axis_y + 12}" text-anchor="middle" font-size="10">{v:+.3f}</text>'
        )
    parts.append(
        f'<text x="{(left + right) / 2}" y="{height - 1}" text-anchor="middle" font-size="11">'
        f"AUC difference, {escape(pair[1])} − {escape(pair[0])}</text></svg>"
    )
    return "".join(parts)


def _metric_table(name: str, a: dict[str, Any]) -> str:
    if "error" in a:
        return f"<p class='note'>{escape(name)}: not estimable — {escape(a['error'])}</p>"
    g = a["global_test"]
    rows = "".join(
        f"<tr><td>{escape(c['condition'])}</td><td>{_f(c['estimate'])}</td><td>{_ci(c['ci_lower'], c['ci_upper'])}</td>"
        f"<td>{_f(c['std_err'], 4)}</td><td>{_f(c['df'], 1)}</td></tr>"
        for c in a["condition_estimates"]
    )
    diffs = "".join(
        f"<tr class='difference'><td>{escape(d['first'])} − {escape(d['second'])}</td><td>{_f(d['estimate'])}</td>"
        f"<td>{_ci(d['ci_lower'], d['ci_upper'])}</td><td>{_f(d['std_err'], 4)}</td><td>{_f(d['df'], 1)}</td></tr>"
        for d in a["differences"]
    )
    test = f"{escape(g['statistic'])}({_f(g['df1'], 0)}, {_f(g['df2'], 2)}) = {_f(g['value'], 3)}, p = {_p(g['p_value'])}"
    comps = a.get("components") or {}
    comp = ""
    if comps:
        comp = (
            "<p class='small'>OR variance components: σ²<sub>R</sub> = "
            f"{_f(comps.get('reader'), 6)}, σ²<sub>TR</sub> = {_f(comps.get('condition_reader'), 6)}, "
            f"Var(ε) = {_f(comps.get('error'), 6)}, Cov1 = {_f(comps.get('cov1'), 6)}, "
            f"Cov2 = {_f(comps.get('cov2'), 6)}, Cov3 = {_f(comps.get('cov3'), 6)}.</p>"
        )
    level = round(100 * a["conf_level"])
    return (
        f"<h4>{escape(name)}</h4><table><thead><tr><th></th><th>estimate</th><th>{level}% CI</th><th>SE</th>"
        f"<th>df</th></tr></thead><tbody>{rows}{diffs}</tbody></table><p>Global test: {test}.</p>{comp}"
    )


def _intra(ep: dict[str, Any], pair: tuple[str, str]) -> str:
    """Intra-reader agreement per condition (repeat reads of the same units in the same condition)."""
    intra = ep.get("intra_reader") or {}
    parts = []
    for cond in pair:
        i = intra.get(cond)
        if not i or not i["n_pairs"]:
            parts.append(f"{escape(cond)}: no repeat reads")
            continue
        readers = ", ".join(f"{escape(r['reader'])} {_f(r['kappa'])}" for r in i["readers"])
        parts.append(
            f"{escape(cond)} {_f(i['kappa'])} (95% CI {_ci(i['ci_lower'], i['ci_upper'])}, {i['n_pairs']} pairs; "
            f"per reader: {readers})"
        )
    return (
        "<p class='intra'>Intra-reader agreement (Cohen's κ of each reader's calls on the same "
        f"{escape(ep['unit'])}s read again in the same condition, pooled over readers, case bootstrap): "
        + "; ".join(parts)
        + ".</p>"
    )


def _endpoint(ep: dict[str, Any], pair: tuple[str, str] = ("unaided", "aided")) -> str:
    head = f"<section class='endpoint' data-endpoint='{escape(ep['key'])}'><h3>{escape(ep['label'])}</h3>"
    if "error" in ep:
        return f"{head}<p class='note'>Not analysed: {escape(ep['error'])}</p></section>"
    first, second = (escape(c) for c in pair)
    a = ep["analyses"]
    fixed = a["auc_fixed_readers"]
    info = (
        f"<p>{ep['n_readers']} readers, {ep['n_units']} {escape(ep['unit'])}s ({ep['n_positive']} positive by the "
        f"reference), {ep['n_reads']} reads; positive read at rating ≥ {ep.get('call_from', ep['threshold'])}.</p>"
        f"<p class='rating' data-rating='{escape(ep.get('rating', 'value'))}'><b>Rating used for the ROC "
        f"analysis:</b> {escape(ep.get('rating_label', 'the binary value 0/1'))}.</p>"
    )
    figures = (
        "<div class='figures'><figure>"
        + _roc_svg(ep["roc"], pair=pair)
        + "<figcaption>Empirical ROC curves: thin lines per reader, thick lines the reader average.</figcaption>"
        "</figure><figure>"
        + _forest_svg(fixed["reader_differences"], a["auc"]["differences"][0], pair=pair)
        + "<figcaption>AUC difference per reader (fixed-reader z intervals) and for all readers (OR–Hillis, "
        "random readers and cases).</figcaption></figure></div>"
    )
    per_reader = "".join(
        f"<tr><td>{escape(d['reader'])}</td><td>{_f(d['estimate'])}</td><td>{_ci(d['ci_lower'], d['ci_upper'])}</td>"
        f"<td>{_p(d['p_value'])}</td></tr>"
        for d in fixed["reader_differences"]
    )
    ag = ep["agreement"]
    agreement = (
        f"<p>Inter-reader agreement (Fleiss' κ, {ag['n_cases']} {escape(ep['unit'])}s read by {ag['n_raters']} readers "
        f"in both conditions): {first} {_f(ag['kappa_first'])}, {second} {_f(ag['kappa_second'])}; change "
        f"{_f(ag['difference'])} (95% CI {_ci(ag['ci_lower'], ag['ci_upper'])}, paired case bootstrap, "
        f"{ag['n_boot']} resamples). Krippendorff's α (nominal) [7]: {first} {_f(ag.get('alpha_first'))}, {second} "
        f"{_f(ag.get('alpha_second'))}; change {_f(ag.get('alpha_difference'))} (95% CI "
        f"{_ci(ag.get('alpha_ci_lower'), ag.get('alpha_ci_upper'))}).</p>"
    )
    tables = "".join(
        _metric_table(label, a[key])
        for key, label in (
            ("auc", "AUC (primary)"),
            ("sensitivity", "Sensitivity"),
            ("specificity", "Specificity"),
        )
        if key in a
    )
    per_reader_table = (
        f"<h4>AUC difference per reader ({second} − {first})</h4><table><thead><tr><th>reader</th><th>difference</th>"
        f"<th>95% CI</th><th>p</th></tr></thead><tbody>{per_reader}</tbody></table>"
    )
    return head + info + figures + tables + per_reader_table + agreement + _intra(ep, pair) + "</section>"


def reader_study_html(project_name: str, result: dict[str, Any]) -> str:
    """The report of one stored analysis result."""
    pair = _pair(result)
    labels = result.get("condition_labels") or list(pair)
    named = " and ".join(
        f"{escape(c)} ({escape(str(label))})" for c, label in zip(pair, labels, strict=False)
    )
    design = {
        "sequential": f"sequential: each reader read a case in {pair[0]}, then at once again in {pair[1]}",
        "crossover": f"crossover: each reader read each case in {pair[0]} and in {pair[1]} in sessions separated "
        "by a washout, the order of the conditions a row of a cyclic Latin square, balanced over each "
        "reader's cases (randomised per reader, seeded)",
    }.get(result["design"], result["design"])
    methods = (
        f"Diagnostic accuracy in the two conditions ({pair[0]}, {pair[1]}) was compared with the Obuchowski–Rockette analysis of "
        "variance for multi-reader multi-case data [1, 2] with Hillis's denominator degrees of freedom [3], "
        "treating readers and cases as random samples. The covariances of the reader × condition figures of "
        "merit were estimated by the jackknife over cases [4]. The primary figure of merit is the empirical "
        "(trapezoidal) area under the ROC curve over the readers' ratings: the confidence (or probability) a "
        "reader gave a binary item where the grading scheme asks for one, ordinal grades serving as their own "
        "ratings, else the binary call; each endpoint below names its rating. Sensitivity and specificity at "
        "the rating that calls a read positive were analysed the same way. Per-reader differences come "
        "from the fixed-reader analysis (z intervals). Inter-reader agreement is Fleiss' κ [5] and Krippendorff's α "
        "[7] of the readers' binary calls, with percentile confidence intervals for their changes from resampling cases (the same "
        "resampled cases for both conditions). Only first reading sessions enter the accuracy and inter-reader analyses; intra-reader agreement "
        "per condition is Cohen's κ between a reader's first and repeat sessions of a case in that condition "
        "(blinded repeats after the washout). Corrections replace the "
        "readings they supersede. For per-joint endpoints the two joints of a patient are analysed as separate "
        "cases (their correlation within a patient is not modelled). The analysis software (Concord "
        "ml.readerstudy) reproduces the published outputs of MRMCaov [6] and OR-DBM MRMC 2.51 on the Van Dyke "
        "and Franken datasets to their printed precision. All intervals are 95%; p-values are two-sided."
    )
    refs = "".join(f"<li>{escape(r)}</li>" for r in REFERENCES)
    body = "".join(_endpoint(ep, pair) for ep in result["endpoints"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reader study — {escape(project_name)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }}
table {{ border-collapse: collapse; margin: .4em 0 1em; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
tr.difference td {{ font-weight: 600; }} .figures {{ display: flex; gap: 1.5em; flex-wrap: wrap; }}
figure {{ margin: 0; }} figcaption, .small, .note {{ font-size: 12px; color: #555; max-width: 460px; }}
section.endpoint {{ border-top: 2px solid #ddd; margin-top: 1.5em; }}
</style></head><body>
<h1>Reader study: does the AI help? — {escape(project_name)}</h1>
<p><b>Design:</b> {escape(design)}. <b>Conditions compared:</b> <span class="conditions">{named}</span>
(differences are {escape(pair[1])} − {escape(pair[0])}).
<b>Reference standard:</b> {escape(result["reference_label"])}.</p>
<p class="small">Computed {escape(str(result.get("computed_at", "")))}; input data hash {escape(str(result.get("data_hash", "")))};
analysis version {escape(str(result["version"]))}.</p>
<h2>Methods</h2><p>{escape(methods)}</p>
<h2>Results</h2>{body}
<h2>References</h2><ol>{refs}</ol>
</body></html>
"""
