"""Fault scenarios against the production-shaped stack, as a table (``make faults``; issue 16, "Faults").

The stack, all on 127.0.0.1 and all this script's own: gunicorn (config/gunicorn.conf.py, gthread), a Celery
worker (prefork) and beat, a Redis started here on a free port (so that it can be stopped without touching
anyone else's), PostgreSQL (a throw-away database) and the checkout's Orthanc (platform/services.sh, on
ORTHANC_PORT). Scenarios:

1. ``kill -9`` of the worker (its whole process group) while it refits a project's consensus; the worker is
   started again. Recovered: the refit completes, with the same result as an undisturbed refit of an
   identical project.
2. ``kill -9`` of the worker during an import job (some studies stored); the worker is started again.
   Recovered: the job succeeds with every study imported once, the cases created once, no problem.
3. The broker (Redis) stopped while readers submit readings through gunicorn: every reading must be 201; Redis
   is started again. Recovered: the follow-up work (a consensus refit covering every reading) has run.
4. Orthanc stopped: /dicomweb/ answers 502 "image server unavailable" with Retry-After (time of the answer),
   an import job pauses (queued, "image server unavailable: paused"); Orthanc started again. Recovered: the
   viewer's request answers 200 again and the import job succeeds.

5. ``kill -9`` of PostgreSQL (the postmaster and its backends, its whole process group) while readers submit
   readings through gunicorn; it is started again (crash recovery). Every answer must be a 201, or a 503 with
   Retry-After (never a 500); a client retries a 503 with the same reading (an identical resubmit of a
   reading that was stored after all is a 201). Recovered: every reading acknowledged and stored exactly once,
   none half-written.

The database is a PostgreSQL of the script's own (initdb in a temporary folder, a free port, started and
killed by the script): the machine's shared PostgreSQL on 5432 is never touched.
Time to recovery: from the fault's end (the kill, Redis answering again, Orthanc's restart, PostgreSQL's
restart) to the recovered state (for PostgreSQL: its first 201 after the restart).
Every wait is a bounded loop. Run: ``.venv/bin/python -m tests.bench.faults [--cases 2000] [--studies 12]
[--only 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.seed_reads import submitted_reads
from tests.bench.stack import ROOT, Stack, free_port, wait_for

SERVICES = ROOT / "platform" / "services.sh"
PASSWORD = "faults-pw"
PATIENT_PREFIX = "PHANTOM-FAULTS-"
INITDB_ARGS = ("--auth=trust", "--no-sync", "-E", "UTF8")


@dataclass
class Row:
    scenario: str
    happened: str
    recovered: bool
    recovery_s: float | None


def orthanc(action: str) -> None:
    subprocess.run(["bash", str(SERVICES), action, "orthanc"], check=True, capture_output=True, timeout=90)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", type=int, default=1500, help="cases of the refit projects (3 readers each)"
    )
    parser.add_argument("--studies", type=int, default=10, help="MRI studies of the killed import")
    parser.add_argument("--timeout", type=float, default=180.0, help="bound of every wait for a recovery, s")
    parser.add_argument("--only", type=int, choices=range(1, 6), help="run this scenario only (1-5)")
    parser.add_argument(
        "--submits", type=int, default=90, help="readings submitted during the PostgreSQL scenario"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="concord-faults-"))
    redis_port, web_port = free_port(), free_port()
    orthanc_port = os.environ.get("ORTHANC_PORT", "8042")
    postgres = PrivatePostgres(folder / "postgres.log")
    postgres.start()
    wait_for(postgres.answers, timeout_s=60, what="answer of the private PostgreSQL")
    settings_env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{postgres.port}/concord_faults",  # test_concord_faults
        "CONCORD_TEST_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "CONCORD_VAR_DIR": str(folder / "var"),
        "DICOMWEB_URL": f"http://127.0.0.1:{orthanc_port}/dicom-web",
        "DEIDENTIFY_ON_IMPORT": "false",
        "JOB_HEARTBEAT_STALE_S": "4",
        "JOB_RECOVER_EVERY_S": "2",
        "JOB_REDISPATCH_AFTER_S": "15",
        "OUTBOX_DRAIN_EVERY_S": "1",
        "WEB_WORKERS": "2",
        "WEB_THREADS": "4",
        "PYTHONPATH": str(ROOT),
        "CONCORD_TEST_RUN_ID": f"faults{os.getpid()}",  # one broker key prefix for this script and the stack
    }
    os.environ.update(settings_env)
    stack = Stack(folder, dict(os.environ), web_port, redis_port, tag="faults")
    stack.start("redis")
    wait_for(stack.redis_up, timeout_s=30, what="Redis answer")
    orthanc("start")
    orthanc("wait")

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    config = setup_databases(verbosity=0, interactive=False)
    db = connection.settings_dict
    stack.env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    rows: list[Row] = []
    world: World | None = None
    try:
        from labeling.services.schemes import schemes_load

        schemes_load()
        for proc in ("web", "worker", "beat"):
            stack.start(proc)
        world = World(stack, web_port)
        world.cleanup()
        wait_for(stack.web_up, timeout_s=90, what="answer of gunicorn")
        wait_for(stack.worker_ready, timeout_s=90, what="ready worker")
        scenarios = {
            1: lambda: refit_killed(stack, world, args.cases, args.timeout),
            2: lambda: import_killed(stack, world, args.studies, folder, args.timeout),
            3: lambda: broker_down(stack, world, args.timeout),
            4: lambda: orthanc_down(stack, world, folder, args.timeout),
            5: lambda: postgres_killed(postgres, world, args.submits, args.timeout),
        }
        for number, scenario in scenarios.items():
            if args.only not in (None, number):
                continue
            try:
                rows.append(scenario())
            except Exception as exc:  # a scenario that could not run is a row too, and the others go on
                traceback.print_exc()
                name = getattr(exc, "scenario", "scenario")
                rows.append(Row(name, f"did not complete: {type(exc).__name__}: {exc}"[:160], False, None))
                if "worker" not in stack.procs:
                    stack.start("worker")
    finally:
        stack.stop_all()
        orthanc("start")
        orthanc("wait")
        if world is not None:
            with contextlib.suppress(Exception):
                world.cleanup()
        connection.close()
        with contextlib.suppress(Exception):  # a database the last scenario left down is simply removed
            wait_for(postgres.answers, timeout_s=60, what="answer of the private PostgreSQL")
            teardown_databases(config, verbosity=0)
        postgres.stop()
    print_table(rows)
    shutil.rmtree(folder, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL of this script's own: ``initdb`` in a fresh temporary folder, a free port on 127.0.0.1,
    the server in its own process group, so that ``kill9`` ends it (postmaster and backends) and nothing
    else. The machine's shared PostgreSQL (5432) is never touched. Run as the ``postgres`` user when the
    script runs as root (PostgreSQL refuses to run as root)."""

    def __init__(self, log: Path) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
        binary = Path(found[-1]) if found else Path(shutil.which("postgres") or "postgres")
        self.bin = binary.parent
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="concord-faults-pg-"))  # /tmp: reachable by that user
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.data, "postgres", "postgres")
        os.chmod(self.data, 0o700)
        subprocess.run(
            [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", *INITDB_ARGS],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        command = [*self.as_user, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        command += ["-k", str(self.data), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"]
        self.proc = subprocess.Popen(
            command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def answers(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
            timeout=10,
        )
        return result.returncode == 0

    def kill9(self) -> None:
        """SIGKILL the server's process group: the postmaster and every backend at once (a crash)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # smart shutdown of this server only
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.data, ignore_errors=True)


def print_table(rows: list[Row]) -> None:
    width = max(len(r.happened) for r in rows)
    print()
    print(f"{'scenario':<34} {'what happened':<{width}} {'recovered':>9} {'recovery s':>10}")
    for r in rows:
        took = f"{r.recovery_s:.1f}" if r.recovery_s is not None else "-"
        print(f"{r.scenario:<34} {r.happened:<{width}} {'yes' if r.recovered else 'no':>9} {took:>10}")


# --- the data --------------------------------------------------------------------------------------------


class World:
    """Users, projects and studies the scenarios use (created in the throw-away database)."""

    def __init__(self, stack: Stack, web_port: int) -> None:
        from django.contrib.auth import get_user_model

        from labeling.dicom import DicomWebStore

        users = get_user_model().objects
        self.admin = users.create_user("faults-admin", password=PASSWORD, is_staff=True)
        self.readers = [users.create_user(f"faults-reader-{i}", password=PASSWORD) for i in range(2)]
        self.base = f"http://127.0.0.1:{web_port}"
        self.stack = stack
        self.store = DicomWebStore.for_orthanc(os.environ["DICOMWEB_URL"].removesuffix("/dicom-web"))
        self.orthanc_studies: list[str] = []

    def token(self, user: Any) -> str:
        import requests

        answer = requests.post(
            f"{self.base}/api/auth/token/", json={"username": user.username, "password": PASSWORD}, timeout=30
        )
        answer.raise_for_status()
        return str(answer.json()["token"])

    def project(self, name: str, scheme: str = "mri_sij") -> Any:
        from labeling.models import GradingScheme, Membership, Project

        project = Project.objects.create(
            name=name, scheme=GradingScheme.objects.filter(name=scheme).latest("pk")
        )
        Membership.objects.create(project=project, user=self.admin, role=Membership.Role.ADMIN)
        for reader in self.readers:
            Membership.objects.create(project=project, user=reader, role=Membership.Role.READER)
        return project

    def cleanup(self) -> None:
        """Delete the studies the scenarios stored in Orthanc (and those of an interrupted run)."""
        from labeling.dicom import DicomNotFound
        from labeling.dicom.store import json_value

        found = self.store.search_studies({"PatientID": f"{PATIENT_PREFIX}*"})
        for study_uid in {*self.orthanc_studies, *(str(json_value(s, "StudyInstanceUID")) for s in found)}:
            with contextlib.suppress(DicomNotFound):
                self.store.delete_study(study_uid)


def refit_projects(world: World, n_cases: int) -> tuple[Any, Any]:
    """Two identical projects (same simulated readings, 3 readers, every case read)."""
    import numpy as np
    from django.contrib.auth import get_user_model

    from labeling.models import Membership

    users = [get_user_model().objects.get_or_create(username=f"faults-refit-{r}")[0] for r in range(3)]
    made = []
    for copy in ("undisturbed", "killed"):
        rng = np.random.default_rng(7)
        project = world.project(f"faults-refit-{copy}")
        for user in users:
            Membership.objects.create(project=project, user=user, role=Membership.Role.READER)
        submitted_reads(project, users, n_cases, rng=rng, flip=0.1, uid_prefix=f"2.25.77{len(made)}.")
        made.append(project)
    return made[0], made[1]


def consensus_signature(project: Any) -> tuple[list[Any], list[Any]]:
    """The current runs (per lesion) and every item's label, with cases by their order in the project."""
    from labeling.models import ConsensusRun, ItemPosterior

    order = {pk: i for i, pk in enumerate(project.cases.order_by("pk").values_list("pk", flat=True))}
    runs = ConsensusRun.objects.filter(project=project, is_current=True)
    summary = sorted((r.lesion, r.n_items, r.n_readings, round(r.log_likelihood, 6)) for r in runs)
    labels = sorted(
        (order[case], joint, region, label)
        for case, joint, region, label in ItemPosterior.objects.filter(run__in=runs).values_list(
            "case_id", "joint", "region", "label"
        )
    )
    return summary, labels


def named(scenario: str, exc: Exception) -> Exception:
    exc.scenario = scenario  # type: ignore[attr-defined]
    return exc


# --- scenarios ---------------------------------------------------------------------------------------------


def refit_killed(stack: Stack, world: World, n_cases: int, timeout_s: float) -> Row:
    from django.db import transaction

    from labeling.models import ConsensusRefitState, ConsensusRun
    from labeling.services.consensus import consensus_refit_project
    from labeling.services.readings import consensus_enqueue

    scenario = "kill -9 worker during refit"
    try:
        undisturbed, killed = refit_projects(world, n_cases)
        began = time.perf_counter()
        consensus_refit_project(project_id=undisturbed.pk)
        plain_s = time.perf_counter() - began
        expected = consensus_signature(undisturbed)
        with transaction.atomic():
            consensus_enqueue(killed.pk, debounce=False)
        wait_for(
            lambda: ConsensusRefitState.objects.filter(project=killed, heartbeat_at__isnull=False).exists(),
            timeout_s=timeout_s,
            what="refit started by the worker",
            every_s=0.02,
        )
        time.sleep(min(plain_s / 10, 0.1))  # just begun: the worker may refit faster than this process
        stack.kill9("worker")
        killed_at = time.monotonic()
        mid_refit = not ConsensusRun.objects.filter(project=killed).exists()
        stack.start("worker")
        n_lesions = len(expected[0])
        wait_for(
            lambda: ConsensusRun.objects.filter(project=killed, is_current=True).count() == n_lesions,
            timeout_s=timeout_s,
            what="refit completed after the restart",
            every_s=0.2,
        )
        took = time.monotonic() - killed_at
        same = consensus_signature(killed) == expected
        values = sum(r[2] for r in expected[0])
        happened = (
            f"{values:,} values, refit {plain_s:.1f} s; killed {'mid-refit' if mid_refit else 'AFTER the refit'}"
            f", worker restarted, refit rerun: {'same result' if same else 'DIFFERENT result'}"
        )
        return Row(scenario, happened, same and mid_refit, took)
    except Exception as exc:
        raise named(scenario, exc) from exc


def mri_study_files(folder: Path, n: int, patient: str) -> list[str]:
    from tests.labeling.dicom.dicom_factory import write_mri_study

    return [write_mri_study(folder, n_slices=8, size=64, patient_id=patient, seed=2 * s)[0] for s in range(n)]


def import_job_start(world: World, project: Any, folder: Path) -> Any:
    from django.db import transaction

    from labeling.services.ingest import import_job_create, import_job_enqueue

    with transaction.atomic():
        job = import_job_create(
            actor=world.admin, project=project, source="faults", params={"folder": str(folder)}
        )
        import_job_enqueue(job)
    return job


def import_outcome(
    world: World, job: Any, project: Any, studies: list[str], cases_before: int = 0
) -> tuple[bool, str]:
    """Whether the job ended as an undisturbed run does: every study imported once, a case each, no problem."""
    from labeling.models import Case

    job.refresh_from_db()
    world.orthanc_studies += studies
    imported = job.report.get("imported", [])
    cases = Case.objects.filter(project=project).count() - cases_before
    stored = sum(len(world.store.search_instances(uid)) for uid in studies)
    ok = (
        job.status == "succeeded"
        and sorted(imported) == sorted(studies)
        and cases == len(studies)
        and not job.problems
        and stored == 16 * len(studies)
    )
    return ok, (
        f"job {job.status} after {job.attempts} attempts: {len(imported)}/{len(studies)} studies, "
        f"{cases} cases, {stored} instances in Orthanc, {len(job.problems)} problems"
    )


def import_killed(stack: Stack, world: World, n_studies: int, folder: Path, timeout_s: float) -> Row:
    from labeling.models import ImportJob

    scenario = "kill -9 worker during import"
    try:
        project = world.project("faults-import")
        studies = mri_study_files(folder / "import-killed", n_studies, f"{PATIENT_PREFIX}IMPORT")
        job = import_job_start(world, project, folder / "import-killed")

        def some_stored() -> bool:
            row = ImportJob.objects.get(pk=job.pk)
            return row.status == "running" and len(row.report.get("imported", [])) >= 2

        wait_for(some_stored, timeout_s=timeout_s, what="import job with 2 studies stored", every_s=0.05)
        before = len(ImportJob.objects.get(pk=job.pk).report.get("imported", []))
        stack.kill9("worker")
        killed_at = time.monotonic()
        stack.start("worker")
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).status in ("succeeded", "failed"),
            timeout_s=timeout_s,
            what="import job finished after the restart",
            every_s=0.2,
        )
        took = time.monotonic() - killed_at
        ok, outcome = import_outcome(world, job, project, studies)
        return Row(scenario, f"killed with {before}/{n_studies} studies stored; {outcome}", ok, took)
    except Exception as exc:
        raise named(scenario, exc) from exc


def broker_down(stack: Stack, world: World, timeout_s: float, n_cases: int = 6) -> Row:
    import requests

    from labeling.models import Assignment, Case, ConsensusRun, OutboxMessage, Reading
    from tests.labeling.factories import full_values, mri_study

    scenario = "broker (Redis) down during submits"
    try:
        project = world.project("faults-broker")
        assignments = []
        for i in range(n_cases):
            case = Case.objects.create(project=project, study=mri_study(), label=f"broker-{i}")
            assignments += [
                Assignment.objects.create(project=project, case=case, reader=reader, session=1)
                for reader in world.readers
            ]
        tokens = {reader.pk: world.token(reader) for reader in world.readers}
        stack.stop("redis")
        wait_for(lambda: not stack.redis_up(), timeout_s=30, what="Redis stop")
        statuses, times = [], []
        for assignment in assignments:
            began = time.perf_counter()
            answer = requests.post(
                f"{world.base}/api/assignments/{assignment.key}/reading/",
                json={"values": full_values(project.scheme.parsed, 1)},
                headers={"Authorization": f"Token {tokens[assignment.reader_id]}"},
                timeout=60,
            )
            times.append(time.perf_counter() - began)
            statuses.append(answer.status_code)
            if answer.status_code != 201:
                raise RuntimeError(f"a reading was answered {answer.status_code}: {answer.text[:200]}")
        pending = OutboxMessage.objects.filter(sent_at__isnull=True).count()
        last = Reading.objects.filter(project=project).latest("created_at").created_at
        time.sleep(3)  # the broker stays down a while (beat and worker retrying)
        stack.start("redis")
        wait_for(stack.redis_up, timeout_s=30, what="Redis answer")
        back_at = time.monotonic()
        wait_for(
            lambda: (
                ConsensusRun.objects.filter(project=project, is_current=True, created_at__gt=last).exists()
                and not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
            ),
            timeout_s=timeout_s,
            what="refit covering the readings and an empty outbox",
            every_s=0.2,
        )
        took = time.monotonic() - back_at
        n_201 = statuses.count(201)
        stored = Reading.objects.filter(project=project).count()
        happened = (
            f"{n_201}/{len(statuses)} readings 201 (median {statistics.median(times):.2f} s, slowest "
            f"{max(times):.2f} s), {stored} stored, {pending} "
            "outbox messages waited; Redis back: outbox drained, refit ran"
        )
        return Row(scenario, happened, n_201 == len(statuses) == stored, took)
    except Exception as exc:
        raise named(scenario, exc) from exc
    finally:
        if not stack.redis_up():  # the next scenarios need the broker
            stack.start("redis")
            wait_for(stack.redis_up, timeout_s=30, what="Redis answer")


def orthanc_down(stack: Stack, world: World, folder: Path, timeout_s: float) -> Row:
    import requests

    from labeling.models import Assignment, Case, ImportJob
    from labeling.services.identity import assignment_study_uid, assignment_uids

    scenario = "Orthanc down (viewer, import)"
    try:
        project = world.project("faults-orthanc")
        first = mri_study_files(folder / "orthanc-first", 1, f"{PATIENT_PREFIX}ORTHANC")
        job = import_job_start(world, project, folder / "orthanc-first")
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).status == "succeeded",
            timeout_s=timeout_s,
            what="first import",
        )
        world.orthanc_studies += first
        case = Case.objects.get(project=project, study__study_uid=first[0])
        assignment = Assignment.objects.create(project=project, case=case, reader=world.readers[0], session=1)
        series = case.study.series.order_by("pk").first()
        uids = assignment_uids(assignment)  # a reader names their study by its pseudonymous UIDs only
        metadata = (
            f"{world.base}/dicomweb/studies/{assignment_study_uid(assignment)}"
            f"/series/{uids.pseudo(series.series_uid)}/metadata"
        )
        auth = {"Authorization": f"Token {world.token(world.readers[0])}"}
        assert requests.get(metadata, headers=auth, timeout=60).status_code == 200

        orthanc("stop")
        began = time.perf_counter()
        down = requests.get(metadata, headers=auth, timeout=60)
        answer_s = time.perf_counter() - began
        try:
            detail = str(down.json().get("detail", ""))
        except ValueError:
            detail = f"not JSON: {down.text[:40]!r}"
        said = (
            down.status_code == 502
            and detail.startswith("image server unavailable")
            and bool(down.headers.get("Retry-After"))
        )
        later = mri_study_files(folder / "orthanc-later", 2, f"{PATIENT_PREFIX}ORTHANC")
        paused_job = import_job_start(world, project, folder / "orthanc-later")
        paused = wait_for(
            lambda: (
                (row := ImportJob.objects.get(pk=paused_job.pk)).attempts >= 1
                and row.status == "queued"
                and row.error.startswith("image server unavailable: paused")
                and row
            ),
            timeout_s=timeout_s,
            what="paused import job",
            every_s=0.2,
        )
        time.sleep(3)
        back_at = time.monotonic()  # the restart begins (Orthanc needs a moment to answer)
        orthanc("start")
        orthanc("wait")
        answering_s = time.monotonic() - back_at
        wait_for(
            lambda: requests.get(metadata, headers=auth, timeout=60).status_code == 200,
            timeout_s=timeout_s,
            what="metadata answered again",
            every_s=0.2,
        )
        viewer_s = time.monotonic() - back_at
        wait_for(
            lambda: ImportJob.objects.get(pk=paused_job.pk).status in ("succeeded", "failed"),
            timeout_s=timeout_s,
            what="paused import job finished",
            every_s=0.2,
        )
        took = time.monotonic() - back_at
        ok, outcome = import_outcome(world, paused_job, project, later, cases_before=1)
        happened = (
            f"/dicomweb/ {down.status_code} '{detail[:24]}' Retry-After {down.headers.get('Retry-After')} in "
            f"{answer_s:.2f} s; import paused ({paused.status}); restarted: answering after {answering_s:.1f} s, "
            f"viewer 200 after {viewer_s:.1f} s, {outcome}"
        )
        return Row(scenario, happened, said and ok, took)
    except Exception as exc:
        raise named(scenario, exc) from exc


def postgres_killed(postgres: PrivatePostgres, world: World, n_submits: int, timeout_s: float) -> Row:
    """Readers submit through gunicorn while PostgreSQL is killed with kill -9 and started again."""
    import threading

    import requests
    from django.db import connections
    from django.db.models import Count

    from labeling.models import Assignment, Case, Reading, ReadingValue
    from tests.labeling.factories import full_values, mri_study

    scenario = "kill -9 PostgreSQL during submits"
    try:
        project = world.project("faults-postgres")
        assignments = []
        for i in range((n_submits + len(world.readers) - 1) // len(world.readers)):
            case = Case.objects.create(project=project, study=mri_study(), label=f"pg-{i}")
            assignments += [
                Assignment.objects.create(project=project, case=case, reader=reader, session=1)
                for reader in world.readers
            ]
        assignments = assignments[:n_submits]
        n_values = len(full_values(project.scheme.parsed, 1))
        tokens = {reader.pk: world.token(reader) for reader in world.readers}
        todo = [(a.key, a.reader_id) for a in assignments]
        lock = threading.Lock()
        answers: list[tuple[float, int, bool, str]] = []  # (time, status, Retry-After given, assignment)
        acknowledged: set[str] = set()
        failures: list[str] = []

        def reader_loop() -> None:
            session = requests.Session()
            while True:
                with lock:
                    if not todo:
                        return
                    key, reader_id = todo.pop()
                body = {"values": full_values(project.scheme.parsed, 1)}
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:  # a client that retries the same reading on a 503
                    try:
                        answer = session.post(
                            f"{world.base}/api/assignments/{key}/reading/",
                            json=body,
                            headers={"Authorization": f"Token {tokens[reader_id]}"},
                            timeout=60,
                        )
                    except requests.RequestException as exc:
                        with lock:
                            failures.append(f"no answer: {exc}"[:120])
                        return
                    with lock:
                        answers.append(
                            (time.monotonic(), answer.status_code, "Retry-After" in answer.headers, key)
                        )
                    if answer.status_code == 201:
                        with lock:
                            acknowledged.add(key)
                        break
                    if answer.status_code != 503:
                        with lock:
                            failures.append(f"{answer.status_code}: {answer.text[:100]}")
                        return
                    time.sleep(min(float(answer.headers.get("Retry-After", 1)), 0.5))
                time.sleep(0.05)  # a reader's pace, roughly: the next case

        threads = [threading.Thread(target=reader_loop) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(acknowledged) >= min(10, n_submits // 4), timeout_s=timeout_s, what="first 201s")
        killed_at = time.monotonic()
        postgres.kill9()
        time.sleep(3)  # down a while: every submit meanwhile must be a 503 with Retry-After
        restarted_at = time.monotonic()
        postgres.start()
        wait_for(postgres.answers, timeout_s=timeout_s, what="answer of the restarted PostgreSQL")
        for thread in threads:
            thread.join(timeout=timeout_s)
        after = [t for t, status, _, _ in answers if status == 201 and t > restarted_at]
        took = (min(after) - restarted_at) if after else None
        connections.close_all()  # this script's connection died with the server
        stored = dict(
            Reading.objects.filter(project=project, supersedes__isnull=True)
            .values("assignment__key")
            .annotate(n=Count("pk"))
            .values_list("assignment__key", "n")
        )
        keys = {a.key for a in assignments}
        per_reading = set(
            ReadingValue.objects.filter(reading__project=project)
            .values("reading")
            .annotate(n=Count("pk"))
            .values_list("n", flat=True)
        )
        statuses = [status for _, status, _, _ in answers]
        n_503 = statuses.count(503)
        with_retry_after = sum(1 for _, status, retry, _ in answers if status == 503 and retry)
        retried = len({key for _, status, _, key in answers if status == 503} & acknowledged)
        exactly_once = all(stored.get(key) == 1 for key in acknowledged) and set(stored) <= keys
        whole = per_reading <= {n_values}
        recovered = (
            not failures
            and acknowledged == keys
            and exactly_once
            and whole
            and with_retry_after == n_503
            and took is not None
        )
        happened = (
            f"{len(keys)} readings by 4 clients: {statuses.count(201)}x201, {n_503}x503 ({with_retry_after} "
            f"with Retry-After; {retried} readings 201 on a retry), {len(failures)} other ({'; '.join(failures[:2]) or 'none'}); down "
            f"{restarted_at - killed_at:.1f} s; {len(acknowledged)}/{len(keys)} acknowledged, stored once: "
            f"{'yes' if exactly_once else 'NO'}, each whole ({n_values} values): {'yes' if whole else 'NO'}"
        )
        return Row(scenario, happened, recovered, took)
    except Exception as exc:
        raise named(scenario, exc) from exc
    finally:
        if not postgres.answers():
            if postgres.proc is None:
                postgres.start()
            wait_for(postgres.answers, timeout_s=60, what="answer of the private PostgreSQL")


if __name__ == "__main__":
    main()
