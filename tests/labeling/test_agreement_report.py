"""The agreement report is computed on the worker, not in a web request: 202 until the first report exists,
then the newest report with whether it is current, one computation queued however often the page asks."""

from datetime import timedelta

from labeling.models import AgreementReport, Assignment, Case, Membership, OutboxMessage
from labeling.services.agreement import COMPUTE_TASK, agreement_compute, agreement_report
from labeling.services.readings import reading_submit
from tests.labeling.factories import MembershipFactory, StudyFactory, UserFactory, full_values
from tests.labeling.test_consensus import campaign


def _queued(project) -> int:
    return OutboxMessage.objects.filter(task=COMPUTE_TASK, args=[project.pk, 5]).count()


def test_the_api_serves_the_workers_report_and_says_when_newer_readings_make_it_stale(db, client_for):
    project, users, _truth = campaign(n_cases=8)
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Membership.Role.ADMIN)
    client = client_for(admin)
    url, csv_url = (
        f"/api/projects/{project.pk}/agreement/?n_boot=5",
        f"/api/projects/{project.pk}/agreement.csv?n_boot=5",
    )

    first = client.get(url)
    assert first.status_code == 202 and first.json()["status"] == "computing"
    assert client.get(url).status_code == 202 and client.get(csv_url).status_code == 202
    assert _queued(project) == 1  # a page asking every 2 s queues one computation, not one per request

    agreement_compute(project_id=project.pk, n_boot=5)  # what the worker runs
    ready = client.get(url).json()
    assert ready["status"] == "ready" and ready["current"] is True
    assert ready["cells"] == agreement_report(project=project, n_boot=5)["cells"]
    table = client.get(csv_url)
    assert (
        table.status_code == 200
        and table["Content-Type"].startswith("text/csv")
        and "alpha" in table.content.decode()
    )
    assert _queued(project) == 1  # a current report queues nothing

    reader = users["good"]
    case = Case.objects.create(project=project, study=StudyFactory(modality="MR"))
    assignment = Assignment.objects.create(project=project, case=case, reader=reader)
    reading_submit(actor=reader, assignment=assignment, values=full_values(project.scheme.parsed, value=1))
    stale = client.get(url).json()
    assert stale["status"] == "ready" and stale["current"] is False and stale["as_of"] == ready["as_of"]
    assert stale["cells"] == ready["cells"]  # the old report meanwhile, not an empty page
    client.get(url)
    assert _queued(project) == 2

    agreement_compute(project_id=project.pk, n_boot=5)
    fresh = client.get(url).json()
    assert fresh["current"] is True and fresh["as_of"] > ready["as_of"]
    assert next(c for c in fresh["cells"] if c["lesion"] == "bme")["n_cases"] == 9
    assert AgreementReport.objects.filter(project=project).count() == 1


def test_a_report_of_older_data_never_replaces_a_newer_one(db):
    """Two computations at once: the one that read the readings first must not overwrite the later one."""
    project, _users, _truth = campaign(n_cases=4, readers=("good", "average"))
    stored = agreement_compute(project_id=project.pk, n_boot=5)
    newer = stored.as_of + timedelta(hours=1)  # stored meanwhile by a computation that read later
    AgreementReport.objects.filter(pk=stored.pk).update(
        as_of=newer, data_hash="newer", result={"newer": True}
    )
    kept = agreement_compute(project_id=project.pk, n_boot=5)
    assert kept.pk == stored.pk and kept.as_of == newer and kept.result == {"newer": True}


def test_a_computation_lost_with_its_worker_does_not_hold_back_a_new_one(db, client_for):
    project, _users, _truth = campaign(n_cases=3, readers=("good", "average"))
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Membership.Role.ADMIN)
    client = client_for(admin)
    url = f"/api/projects/{project.pk}/agreement/?n_boot=5"
    assert client.get(url).status_code == 202
    OutboxMessage.objects.filter(task=COMPUTE_TASK).update(
        created_at=OutboxMessage.objects.get(task=COMPUTE_TASK).created_at - timedelta(minutes=11)
    )
    assert client.get(url).status_code == 202 and _queued(project) == 2
