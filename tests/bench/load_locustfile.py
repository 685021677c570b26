"""Locust users of the load bench; started by tests/bench/bench_load.py, which writes the seed file this reads
(``LOAD_SEED``: tokens, the project, the form's values, Orthanc's frame URLs, the pacing) and reads back the raw
samples (``LOAD_SAMPLES``) and the acknowledged readings (``LOAD_ACKS``).

Readers: worklist -> next case (the case's data and draft, which the reading view takes as they are) -> each
series' metadata and every frame through /dicomweb/ (as the viewer loads a series while the reader scrolls;
every third frame also one straight from Orthanc, the reference measured under the same load) -> a draft
save every ~``draft_s`` -> a submit with contours, the case taking ``case_s`` (uniform). Adjudicators: queue ->
item -> decision (a 409 because another adjudicator decided the same item at that moment is the designed
answer, counted on a line of its own, not as an error). Admins: agreement, refit. ``burst``: readers only, no
think time and no images (the API's saturation).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from typing import Any

from locust import FastHttpUser, between, events, task

SEED: dict[str, Any] = json.loads(open(os.environ["LOAD_SEED"]).read())  # noqa: SIM115
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
#: The name under which a decision answered "decided by another adjudicator at the same time" is counted.
RACE_409 = "adjudication decision (409: decided at once)"
SAMPLES: list[tuple[float, str, float, bool, int]] = []
ACKS: list[str] = []
_tokens = {role: itertools.cycle(SEED[role]) for role in ("readers", "adjudicators", "admins")}
_env: list[Any] = []


@events.init.add_listener
def _init(environment: Any, **kwargs: Any) -> None:
    _env.append(environment)


@events.request.add_listener
def _record(request_type: str, name: str, response_time: float, exception: Any, **kwargs: Any) -> None:
    runner = _env[0].runner if _env else None
    users = runner.user_count if runner is not None else 0
    SAMPLES.append((time.time(), name, float(response_time), exception is not None, users))


@events.quitting.add_listener
def _dump(environment: Any, **kwargs: Any) -> None:
    with open(os.environ["LOAD_SAMPLES"], "w") as out:
        json.dump(SAMPLES, out)
    with open(os.environ["LOAD_ACKS"], "w") as out:
        json.dump(ACKS, out)


class _Base(FastHttpUser):
    abstract = True
    host = SEED["web"]
    network_timeout = 60.0
    connection_timeout = 10.0
    role = ""

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Token {next(_tokens[self.role])}"}
        self.project = SEED["project_id"]

    def get(self, path: str, name: str, **kwargs: Any) -> Any:
        return self.client.get(path, name=name, headers={**self.auth, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, name: str, body: Any = None) -> Any:
        return self.client.post(path, name=name, headers=self.auth, json=body)


class Reader(_Base):
    role = "readers"
    fixed_count = SEED["n_readers"]
    wait_time = between(0.0, 0.0) if SEED["burst"] else between(1.0, 5.0)

    def pause(self, seconds: float) -> None:
        if not SEED["burst"] and seconds > 0:
            time.sleep(seconds)  # gevent-patched: yields to the other users

    @task
    def read_case(self) -> None:
        began = time.monotonic()
        lo, hi = SEED["case_s"]
        duration = random.uniform(lo, hi)
        self.get(f"/api/projects/{self.project}/worklist/", "worklist")
        answer = self.post(f"/api/projects/{self.project}/worklist/next/", "next case")
        if answer.status_code != 200:
            self.pause(duration)  # 204: nothing left to read
            return
        case = answer.json()  # the case's data and draft, which the reading view takes as they are
        key = case["key"]
        contours = []
        if not SEED["burst"]:
            for series in case["series"]:
                n = self.view_series(case["study_uid"], series["series_uid"])
                if n:
                    contours.append(
                        {
                            "joint": "left",
                            "series_uid": series["series_uid"],
                            "slice_index": n // 2,
                            "points_mm": [[30.0, 0.0, 40.0], [28.0, 0.0, 20.0], [24.0, 0.0, 0.0]],
                        }
                    )
        values = [random.choice(pair) for pair in zip(*SEED["values"], strict=True)]
        drafts = 0
        while (
            drafts < 2
            if SEED["burst"]
            else drafts == 0 or (time.monotonic() - began + SEED["draft_s"] < duration and drafts < 100)
        ):
            self.pause(random.uniform(0.8, 1.2) * SEED["draft_s"])
            done = max(1, len(values) * (drafts + 1) // 8)
            self.post(
                f"/api/assignments/{key}/draft/save/",
                "draft save",
                {"values": values[:done], "contours": contours[:1]},
            )
            drafts += 1
        self.pause(duration - (time.monotonic() - began))
        with self.client.post(
            f"/api/assignments/{key}/reading/",
            name="submit",
            headers=self.auth,
            json={"values": values, "contours": contours, "duration_s": time.monotonic() - began},
            catch_response=True,
        ) as submitted:
            if submitted.status_code == 201:
                ACKS.append(key)
                submitted.success()
            else:
                submitted.failure(f"HTTP {submitted.status_code}: {submitted.text[:120]}")

    def view_series(self, study: str, series: str) -> int:
        """Metadata, then every frame in slice order (a bounded loop); returns the number of slices."""
        answer = self.get(f"/dicomweb/studies/{study}/series/{series}/metadata", "series metadata")
        if answer.status_code != 200:
            return 0
        instances = sorted(answer.json(), key=lambda ds: int(ds.get("00200013", {}).get("Value", [0])[0]))
        for i, ds in enumerate(instances):
            sop = ds["00080018"]["Value"][0]
            self.get(
                f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/1",
                "frame (proxy)",
                headers={"Accept": FRAME_ACCEPT},
            )
            if i % 3 == 0:
                self.get(
                    random.choice(SEED["direct_frames"]),
                    "frame (orthanc direct)",
                    headers={"Accept": FRAME_ACCEPT},
                )
            self.pause(random.uniform(0.05, 0.3))  # scrolling
        return len(instances)


class Adjudicator(_Base):
    role = "adjudicators"
    fixed_count = 0 if SEED["burst"] else SEED["n_adjudicators"]
    wait_time = between(15.0, 45.0)

    @task
    def decide(self) -> None:
        queue = self.get(f"/api/projects/{self.project}/adjudication/queue/?limit=20", "adjudication queue")
        if queue.status_code != 200 or not queue.json()["results"]:
            return
        item = random.choice(queue.json()["results"])
        where = f"{item['case_id']}/{item['joint']}/{item['region']}/{item['lesion']}"
        self.get(f"/api/projects/{self.project}/adjudication/items/{where}/", "adjudication item")
        time.sleep(random.uniform(5.0, 15.0))  # looks at the readings
        value = max(range(len(item["posterior"])), key=lambda c: item["posterior"][c])
        with self.client.post(
            f"/api/projects/{self.project}/adjudication/record/",
            name="adjudication decision",
            headers=self.auth,
            json={
                "case_id": item["case_id"],
                "joint": item["joint"],
                "region": item["region"],
                "lesion": item["lesion"],
                "value": value,
                "reason": "load bench: the most likely class",
            },
            catch_response=True,
        ) as decided:
            if decided.status_code == 409 and "at the same time" in decided.text:
                # two adjudicators decided the same item at once: the designed answer to that race, shown
                # on a line of its own and not counted as an error
                decided.request_meta["name"] = RACE_409
                decided.success()


class Admin(_Base):
    role = "admins"
    fixed_count = 0 if SEED["burst"] else SEED["n_admins"]
    wait_time = between(30.0, 60.0)

    @task
    def review(self) -> None:
        self.get(f"/api/projects/{self.project}/agreement/?n_boot={SEED['agreement_boot']}", "agreement")
        self.post(f"/api/projects/{self.project}/consensus/refit/", "refit")
