"""Which seqs the feed may deliver: the watermark and the gaps above it (pure logic, no I/O).

The event table's seq comes from a sequence: seqs are handed out in order but committed in any order, and
a rolled-back transaction leaves its seq unused for ever. The feed delivers in seq order and must never
pass a seq that may still commit. The watermark is the highest seq such that every seq at or below it has
been delivered or is known never to commit.

A missing seq (a gap: a higher seq is visible, this one is not) is known never to commit when
  1. every transaction that could hold it has ended. Right after the read that shows the gap, the hub records
     the transactions writing to the event table (`capture`: those holding a write lock on it, which an INSERT
     takes before its column default draws the seq and keeps until the transaction ends). The holder of the
     missing seq drew it before the higher seq committed, so before that read: it is among them, or had
     already ended. Once a later snapshot shows none of them still running, a read taken after that snapshot
     shows the row if it committed; if it does not, it never will (a rollback, or a crash); and
  2. it has been missing at least `grace_s` (defence in depth; nothing known needs it).
A gap still open after `timeout_s` is given up regardless, because a transaction held open that long would
otherwise stall every screen. If one of its candidates may still be running, the seq stays watched for
`late_watch_s`; should it commit after all, it is delivered late (flagged) rather than lost.

The hub calls, each cycle: `advance(rows read after the previous snapshot, alive=that snapshot)`, then,
while `pending`, takes a new snapshot of the running transactions and `capture`s it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Span:
    """Missing seqs lo..hi (inclusive), first seen missing at `first_seen`; `candidates`: the transactions
    that were running right after that (None until captured)."""

    lo: int
    hi: int
    first_seen: float
    candidates: frozenset[str] | None = None


@dataclass
class Advance(Generic[T]):
    ready: list[T] = field(default_factory=list)  # deliverable now, in seq order
    late: list[T] = field(default_factory=list)  # committed after their seq was given up
    skipped: list[tuple[int, int]] = field(default_factory=list)  # gaps known never to commit
    given_up: list[tuple[int, int]] = field(default_factory=list)  # gaps skipped at the timeout


class Watermark(Generic[T]):
    def __init__(self, value: int, *, grace_s: float, timeout_s: float, late_watch_s: float = 3600.0) -> None:
        self.value = value
        self.max_seen = value
        self.grace_s = grace_s
        self.timeout_s = timeout_s
        self.late_watch_s = late_watch_s
        self._held: dict[int, T] = {}
        self._gaps: list[_Span] = []  # sorted, disjoint, inside (value, max_seen)
        self._late: list[_Span] = []
        self._barrier: _Span | None = None

    def hold_until_quiet(self, now: float) -> None:
        """At start-up: seqs at or below the watermark may belong to transactions still running; `settled`
        turns true once every transaction running now has ended."""
        self._barrier = _Span(0, -1, now)

    @property
    def settled(self) -> bool:
        return self._barrier is None

    @property
    def pending(self) -> bool:
        """Something waits on running transactions: the hub must snapshot them each cycle."""
        return bool(self._gaps or self._late or self._barrier)

    @property
    def held(self) -> int:
        return len(self._held)

    def watched(self) -> list[tuple[int, int]]:
        """Spans below max_seen whose rows may still appear (gaps, and given-up seqs still watched)."""
        return [(s.lo, s.hi) for s in (*self._gaps, *self._late)]

    def is_watched_late(self, seq: int) -> bool:
        return any(s.lo <= seq <= s.hi for s in self._late)

    def capture(self, alive: frozenset[str]) -> None:
        """Record the transactions running right after the read that revealed the newest gaps."""
        for span in (*self._gaps, *self._late, *((self._barrier,) if self._barrier else ())):
            if span.candidates is None:
                span.candidates = alive

    def advance(self, rows: Iterable[tuple[int, T]], *, now: float, alive: frozenset[str] | None) -> Advance[T]:
        """Take the rows of one read; `alive` is the snapshot of running transactions taken before that read
        (None if there was none)."""
        out: Advance[T] = Advance()
        for seq, item in sorted(rows, key=lambda r: r[0]):
            if _take(self._late, seq):
                out.late.append(item)
                continue
            if seq <= self.value or seq in self._held:
                continue
            if seq > self.max_seen:
                if seq > self.max_seen + 1:
                    self._gaps.append(_Span(self.max_seen + 1, seq - 1, now))
                self.max_seen = seq
            else:
                _take(self._gaps, seq)
            self._held[seq] = item
        if self._barrier is not None and self._ended(self._barrier, now, alive):
            self._barrier = None
        while True:
            following = self.value + 1
            if following in self._held:
                out.ready.append(self._held.pop(following))
                self.value = following
                continue
            if not self._gaps or self._gaps[0].lo != following:
                break
            gap = self._gaps[0]
            if self._ended(gap, now, alive):
                out.skipped.append((gap.lo, gap.hi))
            elif now - gap.first_seen >= self.timeout_s:
                out.given_up.append((gap.lo, gap.hi))
                self._late.append(gap)
            else:
                break
            self._gaps.pop(0)
            self.value = gap.hi
        self._late = [
            s for s in self._late if not (self._ended(s, now, alive) or now - s.first_seen >= self.late_watch_s)
        ]
        return out

    def _ended(self, span: _Span, now: float, alive: frozenset[str] | None) -> bool:
        return (
            span.candidates is not None
            and alive is not None
            and now - span.first_seen >= self.grace_s
            and not (span.candidates & alive)
        )


def _take(spans: list[_Span], seq: int) -> bool:
    """Remove seq from the span holding it (splitting it); False if none holds it."""
    for i, span in enumerate(spans):
        if span.lo <= seq <= span.hi:
            parts = [p for p in (replace(span, hi=seq - 1), replace(span, lo=seq + 1)) if p.lo <= p.hi]
            spans[i : i + 1] = parts
            return True
    return False
