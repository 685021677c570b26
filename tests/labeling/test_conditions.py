"""Reader-study conditions (issue 14): a project's conditions and design, what each read is served, and the
analysis of any two conditions. Tried through the API as an admin and a reader would, on PostgreSQL and (for
the images) a real Orthanc."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rest_framework.authtoken.models import Token

from labeling.conditions import ConditionError, crossover_order, validate_conditions
from labeling.models import Assignment, Case, Membership, Project
from labeling.selectors import worklist_for_reader
from labeling.services.assignments import assignments_generate
from labeling.services.identity import assignment_uids
from labeling.services.ingest import import_dicomweb
from labeling.services.reader_study import ANALYSIS_VERSION, reader_study_compute
from labeling.services.readings import reading_submit
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import make_mri_study
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, full_values, scheme
from tests.labeling.test_assignments import make_project
from tests.labeling.test_reader_study import ct_study, grades

CROSSOVER = Project.ReaderStudyDesign.CROSSOVER


def test_the_vocabulary_checks_a_projects_conditions():
    assert validate_conditions(["t1_only", "t1_stir"], sequences=["T1", "STIR"]) == ["t1_only", "t1_stir"]
    assert validate_conditions([]) == []  # the project's default
    for bad, words in (
        (["unaided"], "2 to 6"),
        (["unaided", "unaided"], "twice"),
        (["unaided", "guess"], "unknown condition 'guess'"),
        (["t1_only", "t1_stir"], "needs a T1 series"),  # a CT scheme has no T1
    ):
        with pytest.raises(ConditionError, match=words):
            validate_conditions(bad, sequences=[])
    assert crossover_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert [crossover_order(["a", "b", "c"], r)[0] for r in range(3)] == ["a", "b", "c"]  # a Latin square


def test_an_admin_sets_the_study_conditions_and_design_through_the_api(world, client_for):
    Assignment.objects.filter(project=world.project).delete()  # a new project: its first condition is free
    url = f"/api/projects/{world.project.pk}/update/"
    client = client_for(world.admin)
    shown = client.get(f"/api/projects/{world.project.pk}/").json()
    assert shown["study_conditions"] == [] and shown["reader_study_conditions"] == []
    assert {"unaided", "aided", "t1_only", "t1_stir"} <= {c["name"] for c in shown["condition_choices"]}
    assert client.post(url, {"ai_aided_reads": True}, format="json").json()["study_conditions"] == [
        "unaided",
        "aided",
    ]  # AI-aided reads on, no conditions named: unaided, then aided
    changed = client.post(
        url,
        {"reader_study_conditions": ["t1_only", "t1_stir"], "reader_study_design": "crossover"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["study_conditions"] == ["t1_only", "t1_stir"]
    bad = client.post(url, {"reader_study_conditions": ["t1_only", "nope"]}, format="json")
    assert bad.status_code == 400 and "reader_study_conditions" in bad.content.decode()
    ct = ProjectFactory(scheme=scheme("ct_sij"))
    MembershipFactory(project=ct, user=world.admin, role=Membership.Role.ADMIN)
    refused = client.post(
        f"/api/projects/{ct.pk}/update/", {"reader_study_conditions": ["t1_only", "t1_stir"]}
    )
    assert refused.status_code == 400 and "T1" in refused.content.decode()
    assert "t1_only" not in {
        c["name"] for c in client.get(f"/api/projects/{ct.pk}/").json()["condition_choices"]
    }


def test_a_crossover_of_three_conditions_reads_each_case_in_each_in_a_balanced_latin_square(db):
    conditions = ["unaided", "aided", "t1_only"]
    project, readers = make_project(
        n_cases=18,
        n_readers=3,
        readers_per_case=2,
        reader_study_conditions=conditions,
        reader_study_design=CROSSOVER,
        washout_days=0,
        washout_cases=2,
    )
    result = assignments_generate(actor=None, project=project, seed=3)
    assert result.created == 36 and result.created_crossover == 72
    chains: dict[tuple[int, int], list[str]] = {}
    rows = {a.pk: a for a in project.assignments.all()}
    for a in rows.values():
        if a.previous_id is None:
            order, at = [a.condition], a
            while (nxt := next((b for b in rows.values() if b.previous_id == at.pk), None)) is not None:
                assert nxt.case_id == a.case_id and nxt.washout_cases == 2  # the washout between sessions
                order.append(nxt.condition)
                at = nxt
            chains[(a.case_id, a.reader_id)] = order
    assert len(chains) == 36 and all(sorted(o) == sorted(conditions) for o in chains.values())
    assert all(o in [crossover_order(conditions, r) for r in range(3)] for o in chains.values())
    for reader in readers:  # each reader's cases take the square's rows in turn: balanced to within one
        firsts = Counter(o[0] for (_, r), o in chains.items() if r == reader.pk)
        assert max(firsts.values()) - min(firsts.values()) <= 1 and len(firsts) == 3
    assert all(a.aided == (a.condition == "aided") for a in rows.values())
    plan = sorted(project.assignments.values_list("case_id", "reader_id", "condition", "previous__condition"))
    again = assignments_generate(actor=None, project=project, seed=3)
    assert (again.created, again.created_crossover) == (0, 0)
    assert (
        sorted(project.assignments.values_list("case_id", "reader_id", "condition", "previous__condition"))
        == plan
    )


def test_a_sequential_t1_study_opens_the_t1_stir_read_at_once_after_the_t1_only_one(db):
    project, readers = make_project(
        n_cases=3, n_readers=1, readers_per_case=1, reader_study_conditions=["t1_only", "t1_stir"]
    )
    assignments_generate(actor=None, project=project)
    assert set(project.assignments.values_list("condition", flat=True)) == {"t1_only"}
    first = worklist_for_reader(reader=readers[0], project_id=project.pk).first()
    reading_submit(actor=readers[0], assignment=first, values=full_values(project.scheme.parsed))
    second = project.assignments.get(case_id=first.case_id, condition="t1_stir")
    assert second.previous_id is None and not second.aided
    assert second.pk in {a.pk for a in worklist_for_reader(reader=readers[0], project_id=project.pk)}


def test_the_reader_sees_the_condition_label_and_no_other_read_of_the_case(world, client_for):
    """Blinding in a crossover: the first read of a case (worklist, detail, draft, readings) names nothing of
    the second, which stays out of the worklist until the washout has passed."""
    project = world.project
    project.reader_study_conditions = ["t1_only", "t1_stir"]
    project.reader_study_design = CROSSOVER
    project.washout_cases = 1
    project.save()
    world.other_assignment.delete()
    Assignment.objects.filter(pk=world.assignment.pk).update(condition="t1_only")
    assignments_generate(actor=None, project=project, readers_per_case=1)
    client = client_for(world.reader)
    items = client.get(f"/api/projects/{project.pk}/worklist/").json()["items"]
    assert len(items) == 1  # one read of the case: nothing says another will come
    first = items[0]
    assert first["condition_label"] in ("T1 only", "T1 + STIR")
    later = Assignment.objects.get(reader=world.reader, case=world.case, previous__isnull=False)
    detail = client.get(f"/api/assignments/{first['key']}/").json()
    text = str(detail) + str(items)
    assert (
        later.key not in text and str(assignment_uids(later).pseudo(world.case.study.study_uid)) not in text
    )
    assert client.get(f"/api/assignments/{later.key}/").status_code == 404  # waits: not there yet
    values = full_values(project.scheme.parsed)
    made = client.post(f"/api/assignments/{first['key']}/reading/", {"values": values}, format="json")
    assert made.status_code == 201
    listed = client.get("/api/readings/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert rows == []  # the own first read stays hidden while the case's other read is pending


def test_migration_0021_gives_existing_reads_their_condition(transactional_db):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("labeling", "0020_consensus_incremental")], [("labeling", "0021_assignment_condition")]
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        user = old.get_model("auth", "User").objects.create(username="migrated-reader")
        scheme_row = old.get_model("labeling", "GradingScheme").objects.create(
            name="m", version=1, modality="CT", definition={}, content_hash="x"
        )
        project = old.get_model("labeling", "Project").objects.create(name="migrated", scheme=scheme_row)
        study = old.get_model("labeling", "Study").objects.create(study_uid="1.2.3.4", modality="CT")
        case = old.get_model("labeling", "Case").objects.create(project=project, study=study)
        Old = old.get_model("labeling", "Assignment")
        Old.objects.create(project=project, case=case, reader=user, session=1, aided=False, key="k1")
        Old.objects.create(project=project, case=case, reader=user, session=1, aided=True, key="k2")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps.get_model("labeling", "Assignment")
        assert dict(new.objects.values_list("key", "condition")) == {"k1": "unaided", "k2": "aided"}
    finally:
        # every later migration again: the rest of this test process (the browser tests' database among it)
        # needs them (migrating to 0021 alone left 0022's table out: the browser tests' agreement pages 500ed)
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert not MigrationExecutor(connection).migration_plan(executor.loader.graph.leaf_nodes())


# --- the analysis of two conditions ---------------------------------------------------------------------


def t1_study(n_cases: int = 16, n_readers: int = 3, repeat_fraction: float = 0.0):
    """An MRI project, T1 only vs T1 + STIR in a crossover, read by simulated readers whose grades are more
    often off without the STIR (phantom references)."""
    from tests.labeling.factories import StudyFactory

    project = ProjectFactory(
        scheme=scheme("mri_sij"),
        readers_per_case=n_readers,
        reader_study_conditions=["t1_only", "t1_stir"],
        reader_study_design=CROSSOVER,
        washout_days=0,
        washout_cases=1,
        repeat_fraction=repeat_fraction,
    )
    readers = [UserFactory() for _ in range(n_readers)]
    for user in readers:
        MembershipFactory(project=project, user=user, role=Membership.Role.READER)
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Membership.Role.ADMIN)
    parsed = project.scheme.parsed
    rng = random.Random(5)
    truth = {}
    for i in range(n_cases):
        ref = [{**v, "value": rng.choice((0, 0, 1))} for v in full_values(parsed)]
        case = Case.objects.create(project=project, study=StudyFactory(), label=f"mri-{i}", reference=ref)
        truth[case.pk] = ref
    assignments_generate(actor=None, project=project, seed=2)
    for index, reader in enumerate(readers):
        for _ in range(6 * n_cases):
            a = worklist_for_reader(reader=reader, project_id=project.pk).first()
            if a is None:
                break
            p_off = 0.1 if a.condition == "t1_stir" else 0.4
            read_rng = random.Random(f"{a.case_id}:{index}:{a.condition}:{a.session}")
            values = [{**v, "value": grades(v["value"], read_rng, p_off) % 2} for v in truth[a.case_id]]
            reading_submit(actor=reader, assignment=a, values=values)
    return project, admin


def test_the_api_compares_the_conditions_asked_for_and_says_which_in_csv_and_report(db, client_for):
    project, admin = t1_study(repeat_fraction=0.5)
    assert set(project.readings.values_list("assignment__condition", flat=True)) == {"t1_only", "t1_stir"}
    assert project.readings.filter(session=2).exists()  # repeats of both conditions were read
    analysis = reader_study_compute(project_id=project.pk, reference="phantom")
    assert analysis is not None
    result = analysis.result
    assert result["version"] == ANALYSIS_VERSION == 4
    assert result["conditions"] == ["t1_only", "t1_stir"] and result["condition_labels"] == [
        "T1 only",
        "T1 + STIR",
    ]
    ep = next(e for e in result["endpoints"] if "analyses" in e)
    diff = ep["analyses"]["auc"]["differences"][0]
    assert (diff["first"], diff["second"]) == ("t1_stir", "t1_only")  # differences: T1 + STIR − T1 only
    assert set(ep["roc"]) == {"t1_only", "t1_stir"}
    intra = ep["intra_reader"]
    assert set(intra) == {"t1_only", "t1_stir"} and all(intra[c]["n_pairs"] > 0 for c in intra)
    assert all(len(intra[c]["readers"]) == 3 for c in intra)

    client = client_for(admin)
    base = f"/api/projects/{project.pk}/reader-study"
    body = client.get(f"{base}/", {"conditions": "t1_only,t1_stir"}).json()
    assert body["status"] == "ready" and body["data_hash"] == result["data_hash"]  # the default pair, cached
    flipped = client.get(f"{base}/", {"conditions": "t1_stir,t1_only"})
    assert flipped.status_code == 202 and flipped.json()["conditions"] == ["t1_stir", "t1_only"]
    other = client.get(f"{base}/", {"conditions": "unaided,aided"})  # no such reads: queued, computes empty
    assert other.status_code == 202
    for bad in ("t1_only", "t1_only,t1_only", "t1_only,guess"):
        answer = client.get(f"{base}/", {"conditions": bad})
        assert answer.status_code == 400 and "conditions" in answer.content.decode()
    table = client.get(f"{base}.csv", {"conditions": "t1_only,t1_stir"})
    assert "t1_only-vs-t1_stir" in table["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    assert {r["conditions"] for r in rows} == {"t1_only vs t1_stir"}
    assert any(r["row"] == "difference" and r["comparison"] == "t1_stir - t1_only" for r in rows)
    intra_rows = [r for r in rows if r["metric"] == "intra_reader_kappa" and not r["reader"]]
    assert {r["condition"] for r in intra_rows} == {"t1_only", "t1_stir"}
    html = client.get(f"{base}/report.html").content.decode()
    assert "Conditions compared:" in html and "t1_only (T1 only) and t1_stir (T1 + STIR)" in html
    assert "AUC difference per reader (t1_stir − t1_only)" in html and "Intra-reader agreement" in html


def test_an_analysis_of_an_older_version_is_not_reused(db):
    project, _admin, _readers = ct_study(n_cases=8, n_readers=2)
    first = reader_study_compute(project_id=project.pk, reference="phantom")
    assert first is not None and first.result["conditions"] == ["unaided", "aided"]
    diff = next(e for e in first.result["endpoints"] if "analyses" in e)["analyses"]["auc"]["differences"][0]
    assert (diff["first"], diff["second"]) == ("aided", "unaided")  # unchanged for AI-aided studies
    first.data_hash = "hash-of-version-3"  # what a stored analysis of the previous version looks like
    first.save()
    again = reader_study_compute(project_id=project.pk, reference="phantom")
    assert again is not None and again.pk != first.pk and again.result["version"] == ANALYSIS_VERSION


# --- what a T1-only read is served, through /dicomweb/ on a real Orthanc --------------------------------


PATIENT = "PHANTOM-TEST-CONDITIONS"


@pytest.fixture
def orthanc(settings) -> Iterator[Any]:
    with orthanc_configured(settings, PATIENT, "the condition tests") as store:
        yield store


def test_a_t1_only_read_gets_no_stir_series_and_the_t1_stir_read_of_the_case_gets_both(
    orthanc, world, settings, tmp_path, live_server
):
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False
    datasets = make_mri_study(n_slices=2, patient_id=PATIENT)
    study_uid = datasets[0].StudyInstanceUID
    orthanc.store(datasets)
    report = import_dicomweb(
        actor=None, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    case = Case.objects.get(pk=report.cases[0])
    t1_only = Assignment.objects.create(
        project=world.project, case=case, reader=world.reader, session=1, condition="t1_only"
    )
    both = Assignment.objects.create(
        project=world.project, case=case, reader=world.reader, session=1, condition="t1_stir"
    )
    stir = next(ds for ds in datasets if ds.SeriesDescription == "STIR")
    t1 = next(ds for ds in datasets if ds.SeriesDescription == "T1")
    token = Token.objects.get_or_create(user=world.reader)[0].key
    http = requests.Session()
    http.headers["Authorization"] = f"Token {token}"

    def get(path: str, accept: str = "application/dicom+json") -> requests.Response:
        return http.get(f"{live_server.url}/dicomweb/{path}", headers={"Accept": accept}, timeout=30)

    by_condition: dict[str, dict[str, Any]] = defaultdict(dict)
    for a in (t1_only, both):
        uids = assignment_uids(a)
        study, s_t1, s_stir = (
            uids.pseudo(u) for u in (study_uid, t1.SeriesInstanceUID, stir.SeriesInstanceUID)
        )
        sop_stir = uids.pseudo(stir.SOPInstanceUID)
        shown = by_condition[a.condition]
        detail = requests.get(
            f"{live_server.url}/api/assignments/{a.key}/",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        ).json()
        shown["series"] = sorted(s["description"] for s in detail["series"])
        shown["qido"] = {s["0020000E"]["Value"][0] for s in get(f"studies/{study}/series").json()}
        shown["study_meta"] = {i["0020000E"]["Value"][0] for i in get(f"studies/{study}/metadata").json()}
        shown["instances"] = {i["0020000E"]["Value"][0] for i in get(f"studies/{study}/instances").json()}
        shown["all_series"] = {
            s["0020000E"]["Value"][0]
            for s in get(f"series?StudyInstanceUID={study}").json()
            if s["0020000D"]["Value"][0] == study
        }
        shown["stir_meta"] = get(f"studies/{study}/series/{s_stir}/metadata").status_code
        shown["stir_frame"] = get(
            f"studies/{study}/series/{s_stir}/instances/{sop_stir}/frames/1", "multipart/related; type=*/*"
        ).status_code
        shown["stir_retrieve"] = get(
            f"studies/{study}/series/{s_stir}", 'multipart/related; type="application/dicom"'
        ).status_code
        study_parts = get(f"studies/{study}", 'multipart/related; type="application/dicom"')
        shown["study_retrieve_has_stir"] = b"STIR" in study_parts.content
        shown["ids"] = (s_t1, s_stir)
    only, full = by_condition["t1_only"], by_condition["t1_stir"]
    s_t1, s_stir = only["ids"]
    assert only["series"] == ["T1"] and full["series"] == ["STIR", "T1"]
    for key in ("qido", "study_meta", "instances", "all_series"):
        assert only[key] == {s_t1}, key
        assert full[key] == set(full["ids"]), key
    assert (only["stir_meta"], only["stir_frame"], only["stir_retrieve"]) == (404, 404, 404)
    assert (full["stir_meta"], full["stir_frame"], full["stir_retrieve"]) == (200, 200, 200)
    assert not only["study_retrieve_has_stir"] and full["study_retrieve_has_stir"]


def test_the_agreement_report_of_a_reader_study_measures_its_first_condition_only(db):
    """Regression: a reader's aided read of a case overwrote their unaided one in the agreement report (same
    case, reader and session), so inter-reader agreement mixed the conditions."""
    from labeling.services.agreement import agreement_report

    project, readers = make_project(n_cases=8, n_readers=2, readers_per_case=2, ai_aided_reads=True)
    assignments_generate(actor=None, project=project)
    parsed = project.scheme.parsed
    rng = random.Random(0)
    for _ in range(40):
        open_reads = [a for r in readers for a in worklist_for_reader(reader=r, project_id=project.pk)]
        if not open_reads:
            break
        for a in open_reads:
            # unaided: both readers give the case's own pattern; aided: each reader at random
            value = (a.case_id % 2) if a.condition == "unaided" else rng.choice((0, 1))
            reading_submit(actor=a.reader, assignment=a, values=full_values(parsed, value=value))
    assert project.readings.filter(assignment__condition="aided").count() == 16
    report = agreement_report(project=project, n_boot=0)
    kappas = {c["fleiss_kappa"]["value"] for c in report["cells"]}
    assert kappas == {1.0}  # the unaided reads agree perfectly; the aided ones stay out


def test_the_readings_export_tells_a_readers_conditions_of_one_case_apart(world, client_for):
    """Regression: the readings CSV had two rows per item for a reader's unaided and aided reads of a case,
    with nothing to tell them apart."""
    world.project.ai_aided_reads = True
    world.project.save()
    client = client_for(world.reader)
    values = full_values(world.project.scheme.parsed)
    assert client.post(f"/api/assignments/{world.assignment.key}/reading/", {"values": values}, format="json")
    aided = Assignment.objects.get(reader=world.reader, case=world.case, condition="aided")
    answer = client.post(f"/api/assignments/{aided.key}/reading/", {"values": values}, format="json")
    assert answer.status_code == 201
    body = client_for(world.admin).get(f"/api/projects/{world.project.pk}/exports/readings.csv").content
    table = list(csv.DictReader(io.StringIO(body.decode())))
    mine = [r for r in table if r["reader"] == world.reader.username]
    assert {r["condition"] for r in mine} == {"unaided", "aided"}
    keys = {(r["session"], r["condition"], r["joint"], r["region"], r["lesion"]) for r in mine}
    assert len(keys) == len(mine) == 2 * len(values)


def test_the_first_condition_cannot_change_once_the_project_has_assignments(world, client_for):
    """The first reads are in the first condition: turning AI-aided reads on keeps 'unaided' first and is
    fine; a T1-only first condition would leave the existing unaided reads outside the study (409)."""
    client = client_for(world.admin)
    url = f"/api/projects/{world.project.pk}/update/"
    assert client.post(url, {"ai_aided_reads": True}, format="json").status_code == 200
    extended = client.post(url, {"reader_study_conditions": ["unaided", "aided", "t1_only"]}, format="json")
    assert extended.status_code == 200
    refused = client.post(url, {"reader_study_conditions": ["t1_only", "t1_stir"]}, format="json")
    assert refused.status_code == 409 and "first condition" in refused.content.decode()
    world.project.refresh_from_db()
    assert world.project.study_conditions == ["unaided", "aided", "t1_only"]


def test_a_crossover_plan_is_topped_up_after_a_reader_who_had_read_is_removed(db):
    """Regression: generating again after removing a reader (their open reads cancelled, their submitted
    first reads kept) planned the cancelled conditions anew and failed on the unique key."""
    from labeling.services.projects import membership_remove

    project, readers = make_project(
        n_cases=6,
        n_readers=3,
        readers_per_case=2,
        reader_study_conditions=["unaided", "aided"],
        reader_study_design=CROSSOVER,
    )
    assignments_generate(actor=None, project=project, seed=1)
    gone = readers[0]
    first = next(
        a for a in worklist_for_reader(reader=gone, project_id=project.pk) if a.condition == "unaided"
    )
    reading_submit(
        actor=gone, assignment=first, values=full_values(project.scheme.parsed)
    )  # aided: cancelled
    membership = project.memberships.get(user=gone, role=Membership.Role.READER)
    assert membership_remove(actor=None, project=project, membership_id=membership.pk) > 0
    again = assignments_generate(actor=None, project=project, seed=1)
    assert again.created > 0  # the cases the removed reader left get other readers, in both conditions
    active = project.assignments.exclude(status="cancelled")
    assert not active.filter(reader=gone).exclude(status="submitted").exists()
    for case_id, reader_id in set(active.exclude(reader=gone).values_list("case_id", "reader_id")):
        conds = set(active.filter(case_id=case_id, reader_id=reader_id).values_list("condition", flat=True))
        assert conds == {"unaided", "aided"}
