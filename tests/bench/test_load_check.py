"""The load bench's post-run check: every reading the API acknowledged (201) is stored exactly once."""

from tests.bench.load_check import Window, readings_consistency, saturation


def test_every_acknowledged_reading_stored_once_is_consistent() -> None:
    found = readings_consistency(["a", "b"], ["b", "a", "c"])
    assert found.ok
    assert (found.acknowledged, found.stored) == (2, 3)
    assert found.unacknowledged == ["c"]  # stored while its 201 was lost on the way: reported, not a loss


def test_a_lost_a_duplicated_and_a_twice_acknowledged_reading_are_each_named() -> None:
    found = readings_consistency(["a", "b", "c", "c"], ["b", "b", "c"])
    assert not found.ok
    assert found.missing == ["a"]
    assert found.duplicated == ["b"]
    assert found.acknowledged_twice == ["c"]


def test_saturation_is_the_best_throughput_before_the_first_slow_or_failing_window() -> None:
    rows = [
        Window(0, 5, 50, 0, 10.0, 40.0),
        Window(5, 10, 100, 0, 20.0, 90.0),
        Window(10, 15, 90, 0, 18.0, 200.0),
        Window(15, 20, 150, 0, 30.0, 60.0),
        Window(20, 20, 10, 0, 2.0, 60.0),  # cut short by the end: left out
    ]
    best, broke = saturation(rows, 150.0)
    assert best == 20.0
    assert broke is rows[2]
    assert saturation([*rows[:2], Window(10, 15, 90, 3, 25.0, 50.0), *rows[4:]], 150.0)[0] == 20.0
