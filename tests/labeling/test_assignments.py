import time
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from labeling.exceptions import InvalidInput
from labeling.models import Assignment, Case, Membership
from labeling.selectors import worklist_for_reader, worklist_rows_for_reader
from labeling.services.assignments import assignments_generate
from labeling.services.readings import reading_submit
from tests.labeling.factories import MembershipFactory, ProjectFactory, StudyFactory, UserFactory, full_values


def make_project(n_cases=40, n_readers=5, n_reference=None, **settings):
    project = ProjectFactory(**settings)
    readers = [UserFactory() for _ in range(n_readers)]
    for user in readers:
        MembershipFactory(project=project, user=user, role=Membership.Role.READER)
    reference = full_values(project.scheme.parsed)
    for i in range(n_cases):
        has_ref = n_reference is None or i < n_reference
        Case.objects.create(project=project, study=StudyFactory(), reference=reference if has_ref else None)
    return project, readers


def plan(project):
    return sorted(
        project.assignments.values_list("case_id", "reader_id", "session", "previous__reader_id", "order_key")
    )


def test_every_case_gets_k_distinct_readers_and_loads_are_balanced(db):
    project, _readers = make_project(n_cases=37, n_readers=5)
    result = assignments_generate(actor=None, project=project, readers_per_case=3)
    assert result.created == 37 * 3
    per_case = Counter(project.assignments.values_list("case_id", flat=True))
    assert set(per_case.values()) == {3}
    pairs = list(project.assignments.values_list("case_id", "reader_id"))
    assert len(set(pairs)) == len(pairs)
    loads = Counter(project.assignments.values_list("reader_id", flat=True))
    assert max(loads.values()) - min(loads.values()) <= 1
    assert result.spread <= 1


def test_gold_fraction_marks_that_share_of_cases_among_those_with_reference(db):
    project, _ = make_project(n_cases=50, n_reference=30, gold_fraction=0.2)
    result = assignments_generate(actor=None, project=project)
    gold = project.cases.filter(is_gold=True)
    assert result.gold_cases == gold.count() == 10
    assert all(c.reference is not None for c in gold)
    with pytest.raises(InvalidInput, match="reference values"):
        assignments_generate(actor=None, project=project, gold_fraction=0.8)


def test_repeats_are_blinded_second_sessions_by_the_same_reader_and_keep_balance(db):
    project, _ = make_project(n_cases=40, n_readers=4, repeat_fraction=0.2)
    result = assignments_generate(actor=None, project=project)
    repeats = project.assignments.filter(session=2)
    assert result.created_repeats == repeats.count() == round(0.2 * 120)
    for repeat in repeats:
        assert repeat.previous.reader_id == repeat.reader_id and repeat.previous.case_id == repeat.case_id
        assert repeat.order_key != repeat.previous.order_key
    loads = Counter(project.assignments.values_list("reader_id", flat=True))
    assert max(loads.values()) - min(loads.values()) <= 1


def test_generation_is_deterministic_for_a_seed_and_idempotent(db):
    a, _ = make_project(n_cases=30, repeat_fraction=0.3)
    assignments_generate(actor=None, project=a, seed=7)
    first = plan(a)
    again = assignments_generate(actor=None, project=a, seed=7)
    assert again.created == again.created_repeats == 0
    assert plan(a) == first
    # the same cases and readers in a second project, same seed -> the same plan up to ids
    shape = sorted(Counter(r for _, r, s, _, _ in first if s == 1).values())
    b, _ = make_project(n_cases=30, repeat_fraction=0.3)
    assignments_generate(actor=None, project=b, seed=7)
    assert sorted(Counter(r for _, r, s, _, _ in plan(b) if s == 1).values()) == shape


def test_new_cases_are_topped_up_without_touching_existing_ones(db):
    project, _ = make_project(n_cases=10)
    assignments_generate(actor=None, project=project)
    before = plan(project)
    Case.objects.create(project=project, study=StudyFactory())
    result = assignments_generate(actor=None, project=project)
    assert result.created == 3
    assert set(before) <= set(plan(project))


def test_too_few_readers_is_a_clear_error(db):
    project, _ = make_project(n_cases=3, n_readers=2)
    with pytest.raises(InvalidInput, match="at least 3 readers"):
        assignments_generate(actor=None, project=project)
    assert not project.assignments.exists()


def test_a_repeat_opens_only_after_the_washout_in_days_and_other_cases(db):
    project, readers = make_project(
        n_cases=6, n_readers=3, repeat_fraction=1.0, washout_days=7, washout_cases=2
    )
    assignments_generate(actor=None, project=project)
    reader = readers[0]
    firsts = list(project.assignments.filter(reader=reader, session=1).order_by("order_key"))

    def visible() -> set[Assignment]:
        shown = list(worklist_for_reader(reader=reader, project_id=project.pk))
        # the worklist page's rows (one SQL compiled once) hold the same assignments in the same order
        rows = worklist_rows_for_reader(reader=reader, project_id=project.pk)
        assert [row.pk for row in rows] == [a.pk for a in shown]
        return set(shown)

    assert visible() == set(firsts)  # no repeat before its first session is read
    values = full_values(project.scheme.parsed)
    reading_submit(actor=reader, assignment=firsts[0], values=values)
    repeat = Assignment.objects.get(previous=firsts[0])
    assert repeat not in visible()
    assert repeat.not_before > timezone.now() + timedelta(days=6)
    for other in firsts[1:3]:
        reading_submit(actor=reader, assignment=other, values=values)
    assert repeat not in visible()  # enough other cases, but not enough days
    Assignment.objects.filter(pk=repeat.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    assert repeat in visible()
    Assignment.objects.filter(pk=firsts[2].pk).update(submitted_at=firsts[0].submitted_at)
    assert repeat not in visible()  # only one other case read since the first session


def test_the_worklist_rows_apply_the_washout_as_of_each_request(db):
    """The rows' SQL is compiled once per process: the time the washout is compared with is the request's."""
    project, readers = make_project(
        n_cases=6, n_readers=3, repeat_fraction=1.0, washout_days=7, washout_cases=0
    )
    assignments_generate(actor=None, project=project)
    reader = readers[0]
    first = project.assignments.filter(reader=reader, session=1).order_by("order_key").first()
    reading_submit(actor=reader, assignment=first, values=full_values(project.scheme.parsed))
    repeat = Assignment.objects.get(previous=first)
    rows = lambda: {row.pk for row in worklist_rows_for_reader(reader=reader, project_id=project.pk)}  # noqa: E731
    assert repeat.pk not in rows()  # compiled now, if not before
    opens_at = timezone.now() + timedelta(seconds=0.3)
    Assignment.objects.filter(pk=repeat.pk).update(not_before=opens_at)
    assert repeat.pk not in rows()
    time.sleep(max(0.0, (opens_at - timezone.now()).total_seconds()) + 0.05)
    assert repeat.pk in rows()


def test_management_command_generates(db, capsys):
    project, _ = make_project(n_cases=4)
    call_command("generate_assignments", str(project.pk), "--seed", "3")
    assert "12 first reads" in capsys.readouterr().out
