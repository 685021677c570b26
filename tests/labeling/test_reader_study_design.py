"""Reader-study designs in the assignment generator, and the blinding between a case's reads (issue 14)."""

from __future__ import annotations

from collections import Counter

from labeling.models import Assignment, Project
from labeling.selectors import worklist_for_reader
from labeling.services.assignments import assignments_generate
from labeling.services.readings import reading_submit
from tests.labeling.factories import full_values
from tests.labeling.test_assignments import make_project

CROSSOVER = Project.ReaderStudyDesign.CROSSOVER


def crossover_project(**settings):
    defaults = {
        "n_cases": 20,
        "n_readers": 4,
        "readers_per_case": 2,
        "ai_aided_reads": True,
        "reader_study_design": CROSSOVER,
        "washout_days": 0,
        "washout_cases": 3,
    }
    return make_project(**{**defaults, **settings})


def ai_first_cases(project, reader_id):
    return {
        a.case_id
        for a in project.assignments.filter(reader_id=reader_id, session=1, aided=True, previous__isnull=True)
    }


def test_crossover_pairs_every_read_and_puts_half_of_each_readers_cases_ai_first(db):
    project, readers = crossover_project()
    result = assignments_generate(actor=None, project=project, seed=7)
    assert result.created == 40 and result.created_crossover == 40
    unaided = project.assignments.filter(aided=False)
    aided = project.assignments.filter(aided=True)
    assert sorted(unaided.values_list("case_id", "reader_id")) == sorted(
        aided.values_list("case_id", "reader_id")
    )
    per_reader = Counter(unaided.values_list("reader_id", flat=True))
    for reader in readers:
        first = ai_first_cases(project, reader.pk)
        assert len(first) == per_reader[reader.pk] // 2
        # the later read of each pair waits for the earlier one, with the project's washout
        for a in project.assignments.filter(reader=reader):
            later = (a.case_id in first) != a.aided
            assert (a.previous_id is not None) == later
            if later:
                assert (
                    a.previous.case_id == a.case_id and a.previous.aided != a.aided and a.washout_cases == 3
                )
    orders = [frozenset(ai_first_cases(project, r.pk)) for r in readers]
    assert len(set(orders)) == len(orders)  # randomised per reader


def test_crossover_plan_is_seeded_and_idempotent(db):
    project, _readers = crossover_project()
    assignments_generate(actor=None, project=project, seed=7)
    plan = sorted(
        project.assignments.values_list("case_id", "reader_id", "aided", "previous__aided", "order_key")
    )
    again = assignments_generate(actor=None, project=project, seed=7)
    assert (again.created, again.created_crossover) == (0, 0)
    assert (
        sorted(
            project.assignments.values_list("case_id", "reader_id", "aided", "previous__aided", "order_key")
        )
        == plan
    )
    other, _ = crossover_project()
    assignments_generate(actor=None, project=other, seed=8)
    assert [len(ai_first_cases(other, r.pk)) for r in _] == [
        Counter(other.assignments.filter(aided=False).values_list("reader_id", flat=True))[r.pk] // 2
        for r in _
    ]


def test_crossover_second_read_stays_hidden_until_the_washout_and_the_first_gives_no_hint(db):
    project, readers = crossover_project(n_cases=12, n_readers=2, readers_per_case=2, washout_cases=2)
    assignments_generate(actor=None, project=project, seed=1)
    reader = readers[0]
    pairs = project.assignments.filter(reader=reader).count() // 2
    visible = list(worklist_for_reader(reader=reader, project_id=project.pk))
    assert len(visible) == pairs  # one read per case: nothing says a second one will come
    assert len({a.case_id for a in visible}) == pairs
    first = visible[0]
    reading_submit(actor=reader, assignment=first, values=full_values(project.scheme.parsed))
    second = project.assignments.get(reader=reader, case_id=first.case_id, aided=not first.aided)
    assert second.pk not in {a.pk for a in worklist_for_reader(reader=reader, project_id=project.pk)}
    others = [a for a in visible[1:3]]
    for a in others:
        reading_submit(actor=reader, assignment=a, values=full_values(project.scheme.parsed))
    assert second.pk in {a.pk for a in worklist_for_reader(reader=reader, project_id=project.pk)}


def test_sequential_design_still_opens_the_aided_read_right_after_the_unaided_one(db):
    project, readers = make_project(n_cases=4, n_readers=2, readers_per_case=1, ai_aided_reads=True)
    assignments_generate(actor=None, project=project)
    assert not project.assignments.filter(aided=True).exists()
    first = worklist_for_reader(reader=readers[0], project_id=project.pk).first()
    assert first is not None
    reading_submit(actor=readers[0], assignment=first, values=full_values(project.scheme.parsed))
    aided = project.assignments.get(reader=readers[0], case_id=first.case_id, aided=True)
    assert aided.pk in {a.pk for a in worklist_for_reader(reader=readers[0], project_id=project.pk)}


def test_an_aided_read_never_shows_the_readers_own_unaided_reading_of_that_case(world, client_for):
    """Regression: during the aided read, GET /api/readings/ listed (with values) the unaided reading."""
    world.project.ai_aided_reads = True
    world.project.save()
    client = client_for(world.reader)
    values = full_values(world.project.scheme.parsed, value=1)
    made = client.post(f"/api/assignments/{world.assignment.key}/reading/", {"values": values}, format="json")
    assert made.status_code == 201
    unaided = (made.json()["assignment"], made.json()["version"])
    aided = Assignment.objects.get(reader=world.reader, case=world.case, aided=True)
    listed = client.get("/api/readings/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert unaided not in [(r["assignment"], r["version"]) for r in rows]
    assert client.get(f"/api/assignments/{world.assignment.key}/readings/1/").status_code == 404
    assert client.get(f"/api/assignments/{aided.key}/draft/").json()["values"] == []  # the form starts empty
    assert client.get(f"/api/assignments/{aided.key}/ai/").json() == []  # only the AI's output, none yet
    assert "values" not in client.get(f"/api/assignments/{aided.key}/").json()
    done = client.post(f"/api/assignments/{aided.key}/reading/", {"values": values}, format="json")
    assert done.status_code == 201
    listed = client.get("/api/readings/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    shown = {(r["assignment"], r["version"]) for r in rows}
    assert {unaided, (aided.key, 1)} <= shown  # both visible once the case is done
