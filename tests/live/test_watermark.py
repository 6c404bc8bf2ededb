"""The watermark: in seq order, never past a seq that may still commit, never stuck on a rolled-back one."""

from app.live.watermark import Watermark


def wm(start: int = 10, *, grace: float = 0.5, timeout: float = 30.0) -> Watermark[str]:
    return Watermark(start, grace_s=grace, timeout_s=timeout)


def rows(*seqs: int) -> list[tuple[int, str]]:
    return [(s, f"e{s}") for s in seqs]


def test_contiguous_rows_are_delivered_in_order() -> None:
    w = wm()
    step = w.advance(rows(13, 11, 12), now=0.0, alive=None)
    assert step.ready == ["e11", "e12", "e13"]
    assert w.value == 13 and not w.pending


def test_a_seq_committing_late_holds_back_the_ones_after_it() -> None:
    w = wm()
    step = w.advance(rows(11, 13, 14), now=0.0, alive=None)  # 12 is still in flight
    assert step.ready == ["e11"] and w.value == 11 and w.watched() == [(12, 12)]
    w.capture(frozenset({"101/1"}))  # the transaction holding 12 is running
    assert w.advance([], now=5.0, alive=frozenset({"101/1"})).ready == []
    step = w.advance(rows(12), now=6.0, alive=frozenset({"101/1"}))  # it commits
    assert step.ready == ["e12", "e13", "e14"] and w.value == 14 and not w.pending


def test_a_rolled_back_seq_is_skipped_once_its_candidates_have_ended_and_the_grace_passed() -> None:
    w = wm(grace=0.5)
    w.advance(rows(12), now=0.0, alive=None)
    w.capture(frozenset({"101/1", "102/7"}))
    # Same snapshot as the capture: the candidates are running.
    assert w.advance([], now=0.1, alive=frozenset({"101/1", "102/7"})).ready == []
    # One candidate ended; the other (maybe the holder) runs on.
    assert w.advance([], now=0.2, alive=frozenset({"102/7", "103/9"})).ready == []
    # All ended, but within the grace: still held.
    assert w.advance([], now=0.3, alive=frozenset({"103/9"})).ready == []
    step = w.advance([], now=0.6, alive=frozenset({"103/9"}))
    assert step.skipped == [(11, 11)] and step.ready == ["e12"] and w.value == 12


def test_a_same_pid_in_a_new_transaction_is_not_the_old_candidate() -> None:
    w = wm(grace=0.0)
    w.advance(rows(12), now=0.0, alive=None)
    w.capture(frozenset({"101/1000"}))
    assert w.advance([], now=1.0, alive=frozenset({"101/2000"})).ready == ["e12"]


def test_a_gap_is_never_resolved_without_a_snapshot_taken_after_its_capture() -> None:
    w = wm(grace=0.0)
    w.advance(rows(12), now=0.0, alive=None)
    assert w.advance([], now=1.0, alive=None).ready == []  # not captured yet
    w.capture(frozenset())
    # Nothing was running: any holder had ended before the capture, and this read came after it.
    assert w.advance([], now=1.1, alive=frozenset()).ready == ["e12"]


def test_gaps_fill_and_split_in_any_order() -> None:
    w = wm(grace=0.0)
    w.advance(rows(16), now=0.0, alive=None)  # 11..15 missing
    w.capture(frozenset({"1/1"}))
    assert w.advance(rows(13), now=0.1, alive=frozenset({"1/1"})).ready == []
    assert w.watched() == [(11, 12), (14, 15)]
    assert w.advance(rows(11, 12), now=0.2, alive=frozenset({"1/1"})).ready == ["e11", "e12", "e13"]
    step = w.advance([], now=0.3, alive=frozenset())  # 14 and 15 were rolled back
    assert step.skipped == [(14, 15)] and step.ready == ["e16"] and w.value == 16


def test_duplicates_and_old_rows_are_ignored() -> None:
    w = wm()
    w.advance(rows(11, 13), now=0.0, alive=None)
    step = w.advance(rows(9, 10, 11, 13), now=0.1, alive=None)
    assert step.ready == [] and w.held == 1


def test_a_gap_open_past_the_timeout_is_given_up_and_delivered_late_if_it_commits() -> None:
    w = wm(grace=0.5, timeout=10.0)
    w.advance(rows(12), now=0.0, alive=None)
    w.capture(frozenset({"101/1"}))
    step = w.advance([], now=10.0, alive=frozenset({"101/1"}))
    assert step.given_up == [(11, 11)] and step.ready == ["e12"] and w.value == 12
    assert w.is_watched_late(11) and w.watched() == [(11, 11)]
    step = w.advance(rows(11), now=11.0, alive=frozenset({"101/1"}))
    assert step.late == ["e11"] and not w.pending


def test_a_given_up_seq_stops_being_watched_when_its_candidates_end() -> None:
    w = wm(grace=0.5, timeout=10.0)
    w.advance(rows(12), now=0.0, alive=None)
    w.capture(frozenset({"101/1"}))
    w.advance([], now=10.0, alive=frozenset({"101/1"}))
    assert w.pending
    w.advance([], now=11.0, alive=frozenset())
    assert not w.pending


def test_start_up_waits_for_the_transactions_running_then() -> None:
    w = wm(grace=0.0)
    w.hold_until_quiet(0.0)
    assert not w.settled and w.pending
    assert w.advance(rows(11), now=0.1, alive=None).ready == ["e11"]  # the feed moves on meanwhile
    w.capture(frozenset({"7/1"}))
    w.advance([], now=0.2, alive=frozenset({"7/1"}))
    assert not w.settled
    w.advance([], now=0.3, alive=frozenset({"8/1"}))
    assert w.settled and not w.pending


def test_a_huge_jump_in_the_sequence_costs_one_span() -> None:
    w = wm(grace=0.0)
    w.advance(rows(10_000_000_000), now=0.0, alive=None)
    assert w.watched() == [(11, 9_999_999_999)]
    w.capture(frozenset())
    assert w.advance([], now=0.1, alive=frozenset()).ready == ["e10000000000"]
