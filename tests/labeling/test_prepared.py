"""``PreparedQuery``: a queryset compiled once, run with each call's values."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db.models import QuerySet

from labeling.models import Assignment
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
    both = PreparedQuery(lambda n: Assignment.objects.filter(reader_id=n).values_list("pk")[:n], n=int)
    with pytest.raises(ValueError, match="n is written into the SQL"):
        both.rows(n=3)


def test_calls_name_exactly_the_declared_arguments(world):
    prepared = PreparedQuery(_by_reader, reader_id=int)
    with pytest.raises(TypeError, match="expected"):
        prepared.rows(reader=world.reader.pk)
    with pytest.raises(TypeError, match="no stand-in"):
        PreparedQuery(_by_reader, reader_id=str).rows(reader_id="1")
    assert PreparedQuery(
        lambda at: Assignment.objects.filter(created_at__lt=at).values_list("pk"), at=datetime
    )
