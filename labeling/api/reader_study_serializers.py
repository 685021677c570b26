"""The schema of the reader-study answer (``labeling.services.reader_study.reader_study_analyse``).

Schema only: the view serves the stored result document as the worker wrote it, so that a field added to the
analysis shows up in tests/api_schema.py's strict check (undeclared) instead of being dropped. An estimate
that is not finite is null (``MrmcResult.to_dict``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from labeling.api.serializers import constant


def _num(**kwargs: Any) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, **kwargs)


def _estimate_with_ci() -> tuple[serializers.FloatField, ...]:
    """``estimate, std_err, df, ci_lower, ci_upper``: an Obuchowski–Rockette estimate and its t interval.

    Unpacked in a serializer's body, the five fields keep that place in its field order (and the schema's).
    """
    return tuple(_num() for _ in range(5))


class VarianceComponentsOutput(serializers.Serializer):
    """Obuchowski–Rockette variance components (σ²_R, σ²_TR, Var(ε)) and error covariances."""

    reader = _num()
    condition_reader = _num()
    error = _num()
    cov1 = _num()
    cov2 = _num()
    cov3 = _num()
    correlations = serializers.ListField(child=_num(), help_text="Cov1, Cov2, Cov3 over Var(error)")


class GlobalTestOutput(serializers.Serializer):
    """The test of equal condition means: F with Hillis's df2, or X2 (df2 null: infinite)."""

    statistic = serializers.CharField()
    value = _num()
    df1 = _num()
    df2 = _num()
    p_value = _num()
    ms_condition = _num()
    ms_condition_reader = _num()
    denominator = _num()


class DifferenceOutput(serializers.Serializer):
    """``first`` minus ``second``, for all readers (reader null) or one reader."""

    first = serializers.CharField()
    second = serializers.CharField()
    estimate, std_err, df, ci_lower, ci_upper = _estimate_with_ci()
    statistic = _num()
    p_value = _num()
    reader = serializers.CharField(allow_null=True)


class ConditionEstimateOutput(serializers.Serializer):
    """A condition's reader-averaged metric."""

    condition = serializers.CharField()
    estimate, std_err, df, ci_lower, ci_upper = _estimate_with_ci()
    ms_reader = _num()
    cov2 = _num()
    var_error = _num()


class ReaderEstimateOutput(serializers.Serializer):
    """One reader × condition metric with its case-sampling standard error and Wald CI."""

    reader = serializers.CharField()
    condition = serializers.CharField()
    estimate = _num()
    n_cases = serializers.IntegerField()
    std_err = _num()
    ci_lower = _num()
    ci_upper = _num()


class MrmcAnalysisOutput(serializers.Serializer):
    """An Obuchowski–Rockette analysis with Hillis's degrees of freedom (ml.readerstudy.MrmcResult)."""

    metric = serializers.CharField()
    cov_method = serializers.CharField(allow_null=True)
    readers_random = serializers.BooleanField()
    cases_random = serializers.BooleanField()
    design = serializers.CharField()
    conf_level = serializers.FloatField()
    conditions = serializers.ListField(child=serializers.CharField())
    readers = serializers.ListField(child=serializers.CharField())
    n_cases = serializers.IntegerField()
    values = serializers.ListField(
        child=serializers.ListField(child=_num()), help_text="per reader (rows) and condition (columns)"
    )
    ms = serializers.DictField(child=_num(), help_text="mean squares")
    components = VarianceComponentsOutput(allow_null=True)
    global_test = GlobalTestOutput()
    differences = DifferenceOutput(many=True)
    condition_estimates = ConditionEstimateOutput(many=True)
    reader_estimates = ReaderEstimateOutput(many=True)
    reader_differences = DifferenceOutput(many=True)
    threshold = _num(help_text="the rating a read is called positive from (sensitivity, specificity)")


class AnalysisErrorOutput(serializers.Serializer):
    """Why an analysis could not be made."""

    error = serializers.CharField()


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="MrmcAnalysisOrErrorOutput",
        serializers=[MrmcAnalysisOutput, AnalysisErrorOutput],
        resource_type_field_name=None,
    )
)
class _AnalysisOrError(serializers.JSONField):
    pass


class EndpointAnalysesOutput(serializers.Serializer):
    auc = MrmcAnalysisOutput(help_text="random readers and cases")
    auc_fixed_readers = MrmcAnalysisOutput(help_text="fixed readers: per-reader differences")
    sensitivity = _AnalysisOrError(required=False)
    specificity = _AnalysisOrError(required=False)


class RocCurveOutput(serializers.Serializer):
    fpr = serializers.ListField(child=serializers.FloatField())
    tpr = serializers.ListField(child=serializers.FloatField())


class ConditionRocOutput(serializers.Serializer):
    readers = serializers.DictField(child=RocCurveOutput(), help_text="by the reader's pseudonym")
    average = RocCurveOutput(help_text="the reader-averaged curve")


class AgreementChangeOutput(serializers.Serializer):
    """Fleiss' κ and Krippendorff's α of the binary calls per condition, and their change (second − first)."""

    first = serializers.CharField()
    second = serializers.CharField()
    kappa_first = _num()
    kappa_second = _num()
    difference = _num()
    ci_lower = _num()
    ci_upper = _num()
    n_cases = serializers.IntegerField()
    n_raters = serializers.IntegerField()
    n_boot = serializers.IntegerField()
    conf_level = serializers.FloatField()
    alpha_first = _num()
    alpha_second = _num()
    alpha_difference = _num()
    alpha_ci_lower = _num()
    alpha_ci_upper = _num()


class IntraReaderOfReaderOutput(serializers.Serializer):
    reader = serializers.CharField(help_text="the reader's pseudonym")
    kappa = _num()
    n_pairs = serializers.IntegerField()


class IntraReaderOfConditionOutput(serializers.Serializer):
    """Cohen's κ of a reader's repeat reads of a unit in one condition, pooled (case-clustered CI) and per reader."""

    kappa = _num()
    ci_lower = _num()
    ci_upper = _num()
    n_pairs = serializers.IntegerField()
    readers = IntraReaderOfReaderOutput(many=True)


class ReaderStudyEndpointOutput(serializers.Serializer):
    """One binary endpoint: its definition, then its analyses, or ``error`` when it could not be analysed."""

    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # the endpoint's label (Field.label is a str)
    unit = serializers.CharField(help_text="joint | patient")
    threshold = serializers.IntegerField(
        help_text="a unit is positive by the reference at value >= threshold"
    )
    call_from = serializers.IntegerField(help_text="a read is called positive at rating >= call_from")
    rating = serializers.CharField(help_text="grade | confidence | probability | value: what ROC ranks by")
    rating_label = serializers.CharField()
    error = serializers.CharField(required=False)
    n_units = serializers.IntegerField(required=False)
    n_positive = serializers.IntegerField(required=False)
    n_readers = serializers.IntegerField(required=False, help_text="readers with reads in both conditions")
    n_reads = serializers.IntegerField(required=False)
    analyses = EndpointAnalysesOutput(required=False)
    roc = serializers.DictField(child=ConditionRocOutput(), required=False, help_text="by condition")
    agreement = AgreementChangeOutput(required=False)
    intra_reader = serializers.DictField(
        child=IntraReaderOfConditionOutput(), required=False, help_text="by condition"
    )


class ReaderStudyOutput(serializers.Serializer):
    """The MRMC analysis of two conditions' reads (unaided vs aided by default), per endpoint."""

    status = constant("ready")
    version = serializers.IntegerField(help_text="of the analysis")
    reference = serializers.CharField()
    reference_label = serializers.CharField()
    design = serializers.CharField()
    conditions = serializers.ListField(
        child=serializers.CharField(), help_text="the two conditions compared, in order"
    )
    condition_labels = serializers.ListField(child=serializers.CharField())
    comparison = serializers.CharField(help_text="what a difference is: second - first")
    endpoints = ReaderStudyEndpointOutput(many=True)
    data_hash = serializers.CharField(help_text="of the reads and references analysed")
    computed_at = serializers.DateTimeField()


class ReaderStudyComputingOutput(serializers.Serializer):
    """The analysis of these inputs is being computed: ask again shortly."""

    status = constant("computing")
    reference = serializers.CharField()
    conditions = serializers.ListField(child=serializers.CharField())
    data_hash = serializers.CharField()
