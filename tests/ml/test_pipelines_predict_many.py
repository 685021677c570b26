"""``ml.pipelines.predict_concurrently``: a pre-read batch's cases in flight on threads, outputs in order."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ml.pipelines import predict_concurrently


def _case(i: int) -> dict[str, Any]:
    return {"case_id": i}


def test_outputs_come_in_case_order_whatever_order_the_cases_finish_in() -> None:
    def predict(case: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.02 if case["case_id"] % 2 == 0 else 0.0)  # even cases finish after the next odd one
        return {"id": case["case_id"], "thread": threading.current_thread().name}

    outputs = list(predict_concurrently(predict, (_case(i) for i in range(7)), workers=2))
    assert [o["id"] for o in outputs] == list(range(7))  # type: ignore[index]
    assert all(o["thread"].startswith("preread") for o in outputs)  # type: ignore[index]


def test_a_failed_case_yields_its_exception_in_its_place_and_the_others_go_on() -> None:
    def predict(case: dict[str, Any]) -> dict[str, Any]:
        if case["case_id"] == 1:
            raise ValueError("no sacrum in the segmentation")
        return {"id": case["case_id"]}

    outputs = list(predict_concurrently(predict, [_case(i) for i in range(3)], workers=2))
    assert outputs[0] == {"id": 0} and outputs[2] == {"id": 2}
    assert isinstance(outputs[1], ValueError) and "sacrum" in str(outputs[1])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_cases_are_read_lazily_at_most_workers_plus_one_ahead(workers: int) -> None:
    read: list[int] = []

    def cases():  # type: ignore[no-untyped-def]
        for i in range(10):
            read.append(i)
            yield _case(i)

    outputs = predict_concurrently(lambda case: case, cases(), workers=workers)
    assert read == []  # nothing read before the first output is asked for
    assert next(outputs) == _case(0)
    assert len(read) <= workers + 1
    assert [o["case_id"] for o in outputs] == list(range(1, 10))  # type: ignore[index]


def test_leaving_early_starts_no_further_case_and_waits_for_the_running_ones() -> None:
    started: list[int] = []
    finished: list[int] = []

    def predict(case: dict[str, Any]) -> dict[str, Any]:
        started.append(case["case_id"])
        time.sleep(0.01)
        finished.append(case["case_id"])
        return case

    outputs = predict_concurrently(predict, [_case(i) for i in range(20)], workers=2)
    assert next(outputs) == _case(0)
    outputs.close()
    assert len(started) <= 3 and sorted(finished) == sorted(started)  # none left running


@pytest.mark.parametrize("threads, in_flight", [(1, 1), (2, 2), (4, 2)])
def test_a_batch_reads_no_more_cases_at_once_than_the_process_has_threads(
    threads: int, in_flight: int
) -> None:
    """A worker process with one core of its own (``make demo``'s two processes on two cores) reads one case at
    a time; its threads would only wait for the other process's. Before, it always read two."""
    import torch

    running, most = 0, 0
    lock = threading.Lock()

    def predict(case: dict[str, Any]) -> dict[str, Any]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return case

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert len(list(predict_concurrently(predict, [_case(i) for i in range(6)]))) == 6
    finally:
        torch.set_num_threads(before)
    assert most == in_flight
