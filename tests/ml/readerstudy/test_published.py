"""ml.readerstudy.mrmc reproduces what MRMCaov and the Iowa OR-DBM MRMC software printed on public datasets.

Every expected number below is copied as printed, and is matched to half a unit in its last printed digit
(``assert_printed``): 7 significant digits for MRMCaov (R's default print), 8 decimals for Iowa's AUCs,
variance components, standard errors and CIs (so 5e-9), 2 decimals for Iowa's F and 4 for its p (the coarse
ones are repeated at 7 digits from MRMCaov or RJafroc where those printed them).

Sources:
- MRMCAOV_JSS: Smith BJ, Hillis SL. "MRMCaov: Multi-Reader Multi-Case Analysis of Variance", the JSS
  manuscript knitted with MRMCaov 0.3.0: github.com/brian-j-smith/MRMCaov, commit d79e49b,
  docs/jss/MRMCaov.tex (sections "Multi-Reader Multi-Case Analysis", "Covariance Estimation Methods",
  "Fixed Factors", "Study Designs"). Van Dyke data.
- IOWA_FRANKEN: OR-DBM MRMC 2.51 (Schartz, Hillis, Pesce, Berbaum; build 20181028) output on the Franken
  data, shipped as an RJafroc test fixture: github.com/dpc10ster/RJafroc, commit 44b0e39,
  tests/testthat/goodValues361/Iowa/Franken1.txt (RJafroc's dataset03).
- IOWA_VANDYKE: the same program on the Van Dyke data, same commit, tests/testthat/goodValues361/Iowa/VanDyke.txt.
- RJAFROC_BOOK: Chakraborty DP, RJafrocBook, chapter "OR analysis text output" (#quick-start-or-text),
  github.com/dpc10ster/RJafrocBook: St(dataset03, FOM = "Wilcoxon", method = "OR") printed at 7 digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.readerstudy import MrmcResult, mrmc
from tests.ml.readerstudy._published import assert_printed, load

VANDYKE = load("vandyke")
FRANKEN = load("franken")


def run(data: dict[str, np.ndarray], case: str = "case", **kwargs: object) -> MrmcResult:
    return mrmc(
        data["reader"],
        data[case],
        data["treatment"],
        data["truth"].astype(int),
        data["rating"].astype(float),
        **kwargs,
    )  # type: ignore[arg-type]


def check_components(result: MrmcResult, printed: dict[str, str]) -> None:
    comps = result.components
    assert comps is not None
    got = {
        "reader": comps.reader,
        "condition_reader": comps.condition_reader,
        "error": comps.error,
        "cov1": comps.cov1,
        "cov2": comps.cov2,
        "cov3": comps.cov3,
    }
    for name, text in printed.items():
        actual = comps.correlations[int(name[-1]) - 1] if name.startswith("corr") else got[name]
        assert actual is not None
        assert_printed(actual, text, name)


def check_rows(rows: list[tuple[float, str, str]]) -> None:
    for actual, text, what in rows:
        assert_printed(actual, text, what)


# --- Van Dyke, empirical AUC, random readers and cases --------------------------------------------------


def test_vandyke_reader_aucs_equal_iowa_to_eight_decimals():
    """IOWA_VANDYKE, TREATMENT x READER AUC ESTIMATES."""
    result = run(VANDYKE)
    printed = [["0.91964573", "0.94782609"], ["0.85877617", "0.90531401"], ["0.90386473", "0.92173913"],
               ["0.97310789", "0.99935588"], ["0.82979066", "0.92995169"]]  # fmt: skip
    for r, row in enumerate(printed):
        for t, text in enumerate(row):
            assert_printed(result.values[r, t], text, f"AUC reader {r + 1} treatment {t + 1}")


def test_vandyke_delong_equals_mrmcaov():
    """MRMCAOV_JSS, "## DeLong method": summary(mrmc(empirical_auc(...), cov = DeLong))."""
    result = run(VANDYKE, cov="delong")
    check_components(
        result,
        {
            "reader": "0.0015364254",
            "condition_reader": "0.0002045840",
            "error": "0.0007921325",
            "cov1": "0.0003420090",
            "cov2": "0.0003395265",
            "cov3": "0.0002358497",
            "corr1": "0.4317573",
            "corr2": "0.4286234",
            "corr3": "0.2977402",
        },
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    assert g.statistic == "F" and g.df1 == 1
    check_rows([
        (g.ms_condition, "0.004796171", "MS(T)"), (g.ms_condition_reader or 0, "0.0005510306", "MS(T:R)"),
        (g.denominator, "0.001069415", "Denominator"), (g.value, "4.484854", "F"), (g.df2, "15.06611", "df2"),
        (g.p_value, "0.05123303", "p"),
        (d.estimate, "-0.04380032", "diff"), (d.std_err, "0.0206825", "diff SE"),
        (d.ci_lower, "-0.0878671960", "diff CI lower"), (d.ci_upper, "0.0002665519", "diff CI upper"),
        (d.statistic, "-2.117747", "t"), (d.p_value, "0.05123303", "diff p"),
        (c1.estimate, "0.8970370", "AUC 1"), (c1.ms_reader, "0.003082629", "MS(R) 1"), (c1.cov2, "0.0004775239", "Cov2 1"),
        (c1.std_err, "0.03307642", "SE 1"), (c1.df, "12.59597", "df 1"), (c1.ci_lower, "0.8253461", "lo 1"),
        (c1.ci_upper, "0.9687280", "hi 1"),
        (c2.estimate, "0.9408374", "AUC 2"), (c2.ms_reader, "0.001304602", "MS(R) 2"), (c2.cov2, "0.0002015292", "Cov2 2"),
        (c2.std_err, "0.02150464", "SE 2"), (c2.df, "12.56530", "df 2"), (c2.ci_lower, "0.8942155", "lo 2"),
        (c2.ci_upper, "0.9874592", "hi 2"),
    ])  # fmt: skip


def test_vandyke_unbiased_equals_mrmcaov():
    """MRMCAOV_JSS, "## Unbiased method"."""
    result = run(VANDYKE, cov="unbiased")
    check_components(
        result,
        {
            "reader": "0.0015365290",
            "condition_reader": "0.0002077588",
            "error": "0.0007883925",
            "cov1": "0.0003416706",
            "cov2": "0.0003390650",
            "cov3": "0.0002356148",
            "corr1": "0.4333762",
            "corr2": "0.4300713",
            "corr3": "0.2988547",
        },
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    check_rows([
        (g.denominator, "0.001068281", "Denominator"), (g.value, "4.489614", "F"), (g.df2, "15.03418", "df2"),
        (g.p_value, "0.0511618", "p"),
        (d.std_err, "0.02067154", "diff SE"), (d.ci_lower, "-0.0878519409", "lo"), (d.ci_upper, "0.0002512968", "hi"),
        (d.statistic, "-2.118871", "t"),
        (c1.cov2, "0.0004771788", "Cov2 1"), (c1.std_err, "0.0330712", "SE 1"), (c1.df, "12.58802", "df 1"),
        (c1.ci_lower, "0.8253526", "lo 1"), (c1.ci_upper, "0.9687214", "hi 1"),
        (c2.cov2, "0.0002009512", "Cov2 2"), (c2.std_err, "0.0214912", "SE 2"), (c2.df, "12.53391", "df 2"),
        (c2.ci_lower, "0.8942323", "lo 2"), (c2.ci_upper, "0.9874424", "hi 2"),
    ])  # fmt: skip


def test_vandyke_jackknife_random_readers_equals_iowa():
    """IOWA_VANDYKE, Analysis 1 (random readers and cases), jackknife covariance."""
    result = run(VANDYKE)
    check_components(
        result,
        {
            "reader": "0.00153500",
            "condition_reader": "0.00020040",
            "error": "0.00080229",
            "cov1": "0.00034661",
            "cov2": "0.00034407",
            "cov3": "0.00023903",
            "corr1": "0.43203138",
            "corr2": "0.42886683",
            "corr3": "0.29793328",
        },
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    check_rows(
        [
            (g.ms_condition, "0.00479617", "MS(T)"),
            (g.denominator, "0.00107626", "error term"),
            (g.value, "4.46", "F"),
            (g.df2, "15.26", "df2"),
            (g.p_value, "0.0517", "p"),
            (d.std_err, "0.02075", "diff SE"),
            (d.ci_lower, "-0.08796", "lo"),
            (d.ci_upper, "0.00036", "hi"),
            (c1.estimate, "0.89703704", "AUC 1"),
            (c1.std_err, "0.03317360", "SE 1"),
            (c1.df, "12.74", "df 1"),
            (c1.ci_lower, "0.82522360", "lo 1"),
            (c1.ci_upper, "0.96885048", "hi 1"),
            (c1.cov2, "0.00048396", "Cov2 1"),
            (c2.estimate, "0.94083736", "AUC 2"),
            (c2.std_err, "0.02156637", "SE 2"),
            (c2.df, "12.71", "df 2"),
            (c2.ci_lower, "0.89413783", "lo 2"),
            (c2.ci_upper, "0.98753689", "hi 2"),
            (c2.cov2, "0.00020419", "Cov2 2"),
        ]
    )


# --- Van Dyke, fixed readers / fixed cases ----------------------------------------------------------------


def test_vandyke_fixed_readers_equals_mrmcaov():
    """MRMCAOV_JSS, "## Fixed readers": chi-square test, per-reader differences and single-reader CIs."""
    result = run(VANDYKE, readers="fixed")
    check_components(
        result,
        {
            "reader": "0.0015349993",
            "condition_reader": "0.0002004025",
            "error": "0.0008022883",
            "cov1": "0.0003466137",
            "cov2": "0.0003440748",
            "cov3": "0.0002390284",
        },
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    assert g.statistic == "X2" and g.df1 == 1 and g.df2 == float("inf")
    check_rows(
        [
            (g.denominator, "0.0008758604", "Denominator"),
            (g.value, "5.475953", "X2"),
            (g.p_value, "0.01927984", "p"),
            (d.std_err, "0.01871748", "SE"),
            (d.ci_lower, "-0.08048591", "lo"),
            (d.ci_upper, "-0.00711473", "hi"),
            (d.statistic, "-2.340075", "z"),
            (d.p_value, "0.01927984", "diff p"),
            (c1.var_error, "0.0010141028", "Var 1"),
            (c1.cov2, "0.0004839618", "Cov2 1"),
            (c1.std_err, "0.02428971", "SE 1"),
            (c1.ci_lower, "0.8494301", "lo 1"),
            (c1.ci_upper, "0.9446440", "hi 1"),
            (c2.var_error, "0.0005904738", "Var 2"),
            (c2.cov2, "0.0002041879", "Cov2 2"),
            (c2.std_err, "0.01677632", "SE 2"),
            (c2.ci_lower, "0.9079564", "lo 2"),
            (c2.ci_upper, "0.9737183", "hi 2"),
        ]
    )
    per_reader = [
        ("-0.02818035", "0.02551213", "-0.078183215", "0.021822507", "-1.1045864", "0.26933885"),
        ("-0.04653784", "0.02630183", "-0.098088476", "0.005012792", "-1.7693768", "0.07683102"),
        ("-0.01787440", "0.03120965", "-0.079044180", "0.043295388", "-0.5727202", "0.56683414"),
        ("-0.02624799", "0.01729129", "-0.060138290", "0.007642316", "-1.5179891", "0.12901715"),
        ("-0.10016103", "0.04405746", "-0.186512066", "-0.013809995", "-2.2734182", "0.02300099"),
    ]
    assert [x.reader for x in result.reader_differences] == ["1", "2", "3", "4", "5"]
    for diff, texts in zip(result.reader_differences, per_reader, strict=True):
        got = (diff.estimate, diff.std_err, diff.ci_lower, diff.ci_upper, diff.statistic, diff.p_value)
        check_rows([(a, t, f"reader {diff.reader}") for a, t in zip(got, texts, strict=True)])
    single = {
        ("1", "1"): ("0.9196457", "0.0301255164", "0.8606008", "0.9786907"),
        ("1", "4"): ("0.9731079", "0.0173388332", "0.9391244", "1.0000000"),
        ("2", "4"): ("0.9993559", "0.0007213348", "0.9979421", "1.0000000"),
        ("2", "5"): ("0.9299517", "0.0262023046", "0.8785961", "0.9813073"),
    }
    for est in result.reader_estimates:
        if (est.condition, est.reader) in single:
            texts = single[(est.condition, est.reader)]
            got = (est.estimate, est.std_err or 0, est.ci_lower or 0, est.ci_upper or 0)
            check_rows([(a, t, f"single reader {est.reader}") for a, t in zip(got, texts, strict=True)])


def test_vandyke_fixed_cases_equals_mrmcaov():
    """MRMCAOV_JSS, "## Fixed cases": a treatment × reader ANOVA of the AUCs."""
    result = run(VANDYKE, cases="fixed")
    assert result.components is None and result.covariance is None
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    assert g.df2 == 4
    check_rows(
        [
            (g.value, "8.704", "F"),
            (g.p_value, "0.04195875", "p"),
            (d.std_err, "0.01484629", "SE"),
            (d.ci_lower, "-0.08502022", "lo"),
            (d.ci_upper, "-0.00258042", "hi"),
            (d.statistic, "-2.950254", "t"),
            (c1.std_err, "0.02482994", "SE 1"),
            (c1.ci_lower, "0.8280981", "lo 1"),
            (c1.ci_upper, "0.9659760", "hi 1"),
            (c2.std_err, "0.01615303", "SE 2"),
            (c2.ci_lower, "0.8959894", "lo 2"),
            (c2.ci_upper, "0.9856854", "hi 2"),
        ]
    )


# --- Van Dyke, nested designs and a binary metric ----------------------------------------------------------


def test_vandyke_cases_nested_within_readers_equals_mrmcaov():
    """MRMCAOV_JSS, "## Cases nested within readers" (case2): Cov2 = Cov3 = 0."""
    result = run(VANDYKE, case="case2")
    assert result.design == "cases nested within readers"
    check_components(
        result,
        {
            "reader": "1.293517e-03",
            "condition_reader": "9.213005e-05",
            "error": "8.079682e-04",
            "cov1": "3.490676e-04",
        },
    )
    assert result.components is not None and result.components.cov2 == result.components.cov3 == 0
    g = result.global_test
    check_rows(
        [
            (g.value, "8.704", "F"),
            (g.df2, "4", "df2"),
            (g.p_value, "0.04195875", "p"),
            (result.differences[0].std_err, "0.01484629", "SE"),
        ]
    )


def test_vandyke_cases_nested_within_treatments_equals_mrmcaov():
    """MRMCAOV_JSS, "## Cases nested within tests" (case3): Cov1 = Cov3 = 0."""
    result = run(VANDYKE, case="case3")
    assert result.design == "cases nested within conditions"
    check_components(
        result,
        {
            "reader": "1.642585e-03",
            "condition_reader": "9.078969e-05",
            "error": "8.058382e-04",
            "cov2": "3.455973e-04",
        },
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    check_rows(
        [
            (g.denominator, "0.002279017", "Denominator"),
            (g.value, "2.104491", "F"),
            (g.df2, "68.42325", "df2"),
            (g.p_value, "0.1514363", "p"),
            (d.std_err, "0.03019283", "SE"),
            (d.ci_lower, "-0.10404242", "lo"),
            (d.ci_upper, "0.01644178", "hi"),
            (d.statistic, "-1.450686", "t"),
            (c1.cov2, "0.0004861032", "Cov2 1"),
            (c1.std_err, "0.03320586", "SE 1"),
            (c1.df, "12.79430", "df 1"),
            (c2.cov2, "0.0002050913", "Cov2 2"),
            (c2.std_err, "0.02158730", "SE 2"),
            (c2.df, "12.75962", "df 2"),
        ]
    )


def test_vandyke_sensitivity_at_rating_3_equals_mrmcaov():
    """MRMCAOV_JSS, "## Compare sensitivity for binary classification": binary_sens(truth, rating >= 3)."""
    result = run(VANDYKE, metric="sensitivity", threshold=3)
    assert result.n_cases == 45
    check_components(
        result,
        {
            "reader": "0.0049747475",
            "condition_reader": "0.0007828283",
            "error": "0.0023681257",
            "cov1": "0.0009943883",
            "cov2": "0.0010145903",
            "cov3": "0.0006604938",
            "corr1": "0.4199052",
            "corr2": "0.4284360",
            "corr3": "0.2789100",
        },
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    check_rows(
        [
            (g.ms_condition, "0.02390123", "MS(T)"),
            (g.ms_condition_reader or 0, "0.001802469", "MS(T:R)"),
            (g.denominator, "0.003572952", "Denominator"),
            (g.value, "6.689493", "F"),
            (g.df2, "15.71732", "df2"),
            (g.p_value, "0.02008822", "p"),
            (d.estimate, "-0.09777778", "diff"),
            (d.std_err, "0.03780451", "SE"),
            (d.ci_lower, "-0.1780371", "lo"),
            (d.ci_upper, "-0.0175185", "hi"),
            (d.statistic, "-2.586405", "t"),
            (c1.estimate, "0.8222222", "sens 1"),
            (c1.cov2, "0.001646465", "Cov2 1"),
            (c1.std_err, "0.05893747", "SE 1"),
            (c1.df, "14.456811", "df 1"),
            (c1.ci_lower, "0.6961876", "lo 1"),
            (c1.ci_upper, "0.9482568", "hi 1"),
            (c2.estimate, "0.9200000", "sens 2"),
            (c2.cov2, "0.000382716", "Cov2 2"),
            (c2.std_err, "0.03741657", "SE 2"),
            (c2.df, "7.575855", "df 2"),
            (c2.ci_lower, "0.8328691", "lo 2"),
        ]
    )
    assert c2.ci_upper == 1.0  # truncated at 1, printed "1.0000000"


# --- Franken ------------------------------------------------------------------------------------------------


def test_franken_jackknife_random_readers_equals_iowa_and_rjafroc():
    """IOWA_FRANKEN Analysis 1 at 8 decimals; RJAFROC_BOOK for F, p and the CIs at 7 digits."""
    result = run(FRANKEN)
    printed = [
        ["0.85345997", "0.84961556"],
        ["0.86499322", "0.84350972"],
        ["0.85730439", "0.84011759"],
        ["0.81524197", "0.81433740"],
    ]
    for r, row in enumerate(printed):
        for t, text in enumerate(row):
            assert_printed(result.values[r, t], text, f"AUC reader {r + 1} treatment {t + 1}")
    check_components(
        result,
        {
            "reader": "0.00003776",
            "condition_reader": "-0.00071276",
            "error": "0.00152578",
            "cov1": "0.00079168",
            "cov2": "0.00048364",
            "cov3": "0.00051251",
            "corr1": "0.51887172",
            "corr2": "0.31697811",
            "corr3": "0.33590059",
        },
    )
    check_components(
        result,
        {"error": "1.525776e-03", "cov1": "7.916821e-04", "cov2": "4.836377e-04", "cov3": "5.125091e-04"},
    )
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    assert g.df2 == 3  # Cov2 < Cov3: Hillis's max(Cov2 - Cov3, 0) leaves MS(T:R) alone
    check_rows(
        [
            (result.ms["T"], "2.356541e-04", "MS(T)"),
            (result.ms["R"], "6.840600e-04", "MS(R)"),
            (result.ms["T:R"], "5.020264e-05", "MS(T:R)"),
            (g.value, "4.694058", "F"),
            (g.p_value, "0.1188379", "p"),
            (d.estimate, "0.01085482", "diff"),
            (d.std_err, "0.005010122", "SE"),
            (d.statistic, "2.166577", "t"),
            (d.ci_lower, "-0.005089627", "lo"),
            (d.ci_upper, "0.02679926", "hi"),
            (c1.estimate, "0.84774989", "AUC 1"),
            (c1.std_err, "0.02440215", "SE 1"),
            (c1.df, "70.12179", "df 1"),
            (c1.ci_lower, "0.79908282", "lo 1"),
            (c1.ci_upper, "0.89641696", "hi 1"),
            (c1.cov2, "0.0004722991", "Cov2 1"),
            (c1.ms_reader, "0.0004926635", "MS(R) 1"),
            (c1.var_error, "0.001522778", "Var 1"),
            (c2.estimate, "0.83689507", "AUC 2"),
            (c2.std_err, "0.02356642", "SE 2"),
            (c2.df, "253.64403", "df 2"),
            (c2.ci_lower, "0.79048429", "lo 2"),
            (c2.ci_upper, "0.88330585", "hi 2"),
            (c2.cov2, "0.0004949762", "Cov2 2"),
            (c2.ms_reader, "0.0002415991", "MS(R) 2"),
            (c2.var_error, "0.001528775", "Var 2"),
        ]
    )


def test_franken_fixed_readers_equals_iowa():
    """IOWA_FRANKEN Analysis 2: X2 uses max(Cov2 - Cov3, 0), so here Var(error) - Cov1 alone."""
    result = run(FRANKEN, readers="fixed")
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    check_rows(
        [
            (g.value, "0.32101", "X2"),
            (g.p_value, "0.5710", "p"),
            (d.std_err, "0.01916", "SE"),
            (d.statistic, "0.57", "z"),
            (d.ci_lower, "-0.02670", "lo"),
            (d.ci_upper, "0.04840", "hi"),
            (c1.std_err, "0.02710939", "SE 1"),
            (c1.ci_lower, "0.79461647", "lo 1"),
            (c1.ci_upper, "0.90088331", "hi 1"),
            (c2.std_err, "0.02744860", "SE 2"),
            (c2.ci_lower, "0.78309680", "lo 2"),
            (c2.ci_upper, "0.89069334", "hi 2"),
            (c1.var_error, "0.00152278", "Var 1"),
            (c2.var_error, "0.00152877", "Var 2"),
        ]
    )
    per_reader = [
        ("0.00384", "0.04279", "0.9284", "-0.08003", "0.08772"),
        ("0.02148", "0.04007", "0.5919", "-0.05705", "0.10002"),
        ("0.01719", "0.03499", "0.6233", "-0.05140", "0.08577"),
        ("0.00090", "0.03481", "0.9793", "-0.06731", "0.06912"),
    ]
    for diff, texts in zip(result.reader_differences, per_reader, strict=True):
        got = (diff.estimate, diff.std_err, diff.p_value, diff.ci_lower, diff.ci_upper)
        check_rows([(a, t, f"reader {diff.reader}") for a, t in zip(got, texts, strict=True)])


def test_franken_fixed_cases_equals_iowa():
    """IOWA_FRANKEN Analysis 3: random readers, fixed cases."""
    result = run(FRANKEN, cases="fixed")
    g, d = result.global_test, result.differences[0]
    c1, c2 = result.condition_estimates
    check_rows(
        [
            (g.value, "4.69", "F"),
            (g.p_value, "0.1188", "p"),
            (g.df2, "3", "df2"),
            (d.std_err, "0.00501", "SE"),
            (d.ci_lower, "-0.00509", "lo"),
            (d.ci_upper, "0.02680", "hi"),
            (c1.std_err, "0.01109801", "SE 1"),
            (c1.ci_lower, "0.81243106", "lo 1"),
            (c1.ci_upper, "0.88306871", "hi 1"),
            (c2.std_err, "0.00777173", "SE 2"),
            (c2.ci_lower, "0.81216196", "lo 2"),
            (c2.ci_upper, "0.86162818", "hi 2"),
        ]
    )


@pytest.mark.parametrize("cov", ["delong", "unbiased", "jackknife"])
def test_franken_covariance_methods_agree_on_the_aucs_and_anova(cov: str):
    """The AUCs and the ANOVA do not depend on the covariance method (IOWA_FRANKEN table)."""
    result = run(FRANKEN, cov=cov)
    assert_printed(result.condition_estimates[0].estimate, "0.84774989", "AUC 1")
    assert_printed(result.ms["T:R"], "0.00005020", "MS(T*R)")
