"""``PreparedQuery``: a queryset compiled once, run with each call's values."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db.models import Count, QuerySet
from django.utils import timezone

from labeling.models import Assignment, Draft
from labeling.prepared import PreparedQuery


def _by_reader(reader_id: int) -> QuerySet[Assignment, tuple[int, str]]:
    return Assignment.objects.filter(reader_id=reader_id).order_by("id").values_list("pk", "key")


def test_each_call_runs_with_its_own_values(world):
    prepared = PreparedQuery(_by_reader, reader_id=int)
    for reader in (world.reader, world.other_reader, world.admin):
        assert prepared.rows(reader_id=reader.pk) == list(_by_reader(reader.pk))
    assert prepared.rows(reader_id=world.reader.pk) == [(world.assignment.pk, world.assignment.key)]


def test_an_argument_the_sql_does_not_take_as_a_parameter_is_refused(db):
    ignored = PreparedQuery(lambda reader_id: Assignment.objects.values_list("pk"), reader_id=int)
    with pytest.raises(ValueError, match="reader_id does not reach the SQL"):
        ignored.rows(reader_id=1)
    # a value the ORM writes into the SQL (a slice bound) would be run with the stand-in every time
    inlined = PreparedQuery(lambda n: Assignment.objects.values_list("pk")[:n], n=int)
    with pytest.raises(ValueError, match=r"^n does not reach"):
        inlined.rows(n=3)
    annotated = PreparedQuery(
        lambda key: Assignment.objects.annotate(n=Count("readings")).filter(key=key).values_list("n", "pk"),
        key=str,
    )
    with pytest.raises(ValueError, match="annotations before fields"):
        annotated.rows(key="k")
    ordered_apart = PreparedQuery(
        lambda key: Assignment.objects.filter(key=key).order_by("case__label").distinct().values_list("pk"),
        key=str,
    )
    with pytest.raises(ValueError, match="only to order by them"):
        ordered_apart.rows(key="k")
    both = PreparedQuery(lambda n: Assignment.objects.filter(reader_id=n).values_list("pk")[:n], n=int)
    with pytest.raises(ValueError, match="n is written into the SQL"):
        both.rows(n=3)


def test_calls_name_exactly_the_declared_arguments(world):
    prepared = PreparedQuery(_by_reader, reader_id=int)
    with pytest.raises(TypeError, match="expected"):
        prepared.rows(reader=world.reader.pk)
    with pytest.raises(TypeError, match="reader_id: int expected, got str"):
        prepared.rows(reader_id=str(world.reader.pk))
    with pytest.raises(TypeError, match="no stand-in"):
        PreparedQuery(_by_reader, reader_id=float).rows(reader_id=1.0)
    before = PreparedQuery(
        lambda at: Assignment.objects.filter(created_at__lt=at).values_list("pk"), at=datetime
    )
    assert before.rows(at=world.assignment.created_at) == []
    assert (world.assignment.pk,) in before.rows(at=timezone.now())


def test_instances_are_the_orms_with_their_related_objects_and_annotations(world):
    Draft.objects.create(assignment=world.assignment, values=[{"item": "x", "value": 1}], contours=[])

    def build(key: str) -> QuerySet[Assignment]:
        return (
            Assignment.objects.filter(key=key)
            .select_related("case__study", "draft", "project__scheme")
            .annotate(n_readings=Count("readings"))
        )

    prepared = PreparedQuery(build, key=str)
    for assignment in (world.assignment, world.other_assignment):
        (got,) = prepared.instances(key=assignment.key)
        (orm,) = build(assignment.key)
        assert got == orm and got.n_readings == orm.n_readings == 0
        fields = lambda a: {f.attname: getattr(a, f.attname) for f in Assignment._meta.concrete_fields}  # noqa: E731
        assert fields(got) == fields(orm)
        assert got.case.study.study_uid == orm.case.study.study_uid == world.case.study.study_uid
        assert got.project.scheme.pk == orm.project.scheme.pk
        assert not got._state.adding and got._state.db == "default"
    (with_draft,) = prepared.instances(key=world.assignment.key)
    assert with_draft.draft.values == [{"item": "x", "value": 1}]  # JSON decoded, as the ORM does
    (without,) = prepared.instances(key=world.other_assignment.key)
    assert not hasattr(without, "draft") or without.draft is None
    assert prepared.instances(key="no such key") == []


def test_rows_of_an_aggregate_are_the_orms(world):
    def counts(project_id: int) -> QuerySet[Assignment, tuple[int, int]]:
        mine = Assignment.objects.filter(project_id=project_id)
        return (
            mine.values_list("reader_id")
            .annotate(n=Count("id"))
            .values_list("reader_id", "n")
            .order_by("reader_id")
        )

    prepared = PreparedQuery(counts, project_id=int)
    assert prepared.rows(project_id=world.project.pk) == list(counts(world.project.pk))
    assert prepared.rows(project_id=world.project.pk) == sorted(
        (r.pk, 1) for r in (world.reader, world.other_reader)
    )
