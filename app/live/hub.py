"""One hub per API process: follows the event table past its watermark and fans events out to the sockets.

- A dedicated asyncpg connection (never from the pool) LISTENs on `jizhou_live` and runs the hub's reads.
  A cycle reads the rows past what the hub has seen (and the gaps it watches), advances the watermark
  (watermark.py) and hands every deliverable event to the subscribers, in seq order.
- A cycle runs on a wake-up (a NOTIFY from any process, or a commit in this one) and at least every
  `live_poll_interval_s`: a lost NOTIFY, or an event written outside a request (CLI, SQL), is late, never lost.
  Under a stream of commits cycles start at most every `live_cycle_spacing_ms`, so that one carries many writes.
- The write transaction only inserts the event row. The wake-up NOTIFY goes out after the commit (the
  `after_commit` hook), at most once per `live_notify_coalesce_ms` per process: NOTIFY takes a database-wide
  lock at commit, which would serialize every writing transaction if each sent its own.
- When the connection breaks (database restart), the hub reconnects with backoff and catches up from the
  table; the watermark stays in memory, so nothing in between is skipped.
- Fan-out never awaits a socket: each subscriber has a bounded queue, and a full queue closes that socket
  (4408); the others are not delayed.
- Retention: every `event_prune_interval_s`, one process at a time deletes events older than
  `event_retention_days` (events.service.prune, which leaves an `event.pruned` marker).

The hub reads the event table itself over its own connection: the feed is the events domain's outward face,
and a session from the pool cannot LISTEN.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import is_database_unavailable
from app.events import service as event_service
from app.events.models import Event
from app.live.delivery import Share, Subscriber
from app.live.schemas import CloseCode, FeedEvent, close_reason
from app.live.watermark import Watermark

log = structlog.get_logger(__name__)

CHANNEL = "jizhou_live"
QUERY_TIMEOUT_S = 5.0
GAP_CHECK_INTERVAL_S = 0.1  # how often a pending gap is re-checked
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.2, 5.0
MAX_HELD = 50_000  # rows held behind an open gap before the hub stops reading ahead
STOP_WAIT_S = 5.0
PRUNE_BATCH = 10_000

# New rows past what the hub has seen, plus the rows of the gaps it still watches.
FETCH_SQL = """
(SELECT seq, topic, ts, township_code, subject_type, subject_id, actor, exercise, data::text AS data
 FROM event WHERE seq > $1 ORDER BY seq LIMIT $2)
UNION ALL
(SELECT seq, topic, ts, township_code, subject_type, subject_id, actor, exercise, data::text AS data
 FROM event JOIN unnest($3::bigint[], $4::bigint[]) AS w(lo, hi) ON seq BETWEEN w.lo AND w.hi)
"""
# The transactions that could still commit an event row (see watermark.py): those holding a write lock on the
# event table. An INSERT takes it when the statement is planned, before its column default draws the seq, and
# keeps it to the end of the transaction; readers (a pg_dump, a report) take only AccessShareLock. pg_locks is
# readable by every role and shows fast-path locks; virtualtransaction names one transaction of one backend
# (prepared transactions included).
WRITERS_SQL = """
SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}')
FROM pg_locks
WHERE locktype = 'relation' AND granted AND pid IS DISTINCT FROM pg_backend_pid()
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND relation = 'event'::regclass
  AND mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
"""


def _from_record(row: asyncpg.Record) -> FeedEvent:
    return FeedEvent.build(
        seq=row["seq"],
        topic=row["topic"],
        ts=row["ts"],
        township=row["township_code"],
        subject_type=row["subject_type"],
        subject_id=row["subject_id"],
        actor=row["actor"],
        exercise=row["exercise"],
        data=orjson.loads(row["data"]),
    )


def _from_model(event: Event) -> FeedEvent:
    return FeedEvent.build(
        seq=event.seq,
        topic=event.topic,
        ts=event.ts,
        township=event.township_code,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        actor=event.actor,
        exercise=event.exercise,
        data=event.data,
    )


CloseCallback = Callable[[int, str], None]


class LiveHub:
    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self._sessionmaker = sessionmaker
        # Set once the watermark is known and settled: sockets wait for it before they subscribe.
        self.ready = asyncio.Event()
        self.pruned_through = 0
        self._wm: Watermark[FeedEvent] | None = None
        self._writers: frozenset[str] | None = None  # the last snapshot of WRITERS_SQL
        self._given_up: list[tuple[int, int, float]] = []  # (lo, hi, until): for replays to recognize late seqs
        self._subscribers: set[Subscriber] = set()
        self._sockets: set[CloseCallback] = set()
        self._no_sockets = asyncio.Event()
        self._no_sockets.set()
        self._wake = asyncio.Event()
        self._notify_wanted = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._connected = False
        self._conn_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        # A burst is handed out in chunks of at most half a queue, with a pause between for the sockets to
        # drain it, so a healthy client is never cut off by a burst.
        self._chunk = max(1, min(settings.live_replay_batch, settings.live_queue_size // 2))

    # -- life cycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once; the hub connects in the background (and keeps trying while the database is down)."""
        self._tasks = [
            asyncio.create_task(self._follow_forever(), name="live-follow"),
            asyncio.create_task(self._notify_forever(), name="live-notify"),
            asyncio.create_task(self._prune_forever(), name="live-prune"),
        ]

    async def stop(self) -> None:
        """Close every socket with 1001 (they resume elsewhere with since), then stop listening."""
        for close in list(self._sockets):
            close(CloseCode.SERVER_SHUTDOWN, close_reason("server_shutdown", "reconnect with since"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_sockets.wait(), STOP_WAIT_S)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- what sockets use --------------------------------------------------------------------------------

    @property
    def watermark(self) -> int:
        """Every seq at or below it has been handed out or will never commit."""
        assert self._wm is not None, "wait for `ready` first"
        return self._wm.value

    @property
    def max_seen(self) -> int:
        return self._wm.max_seen if self._wm is not None else 0

    def position_now(self) -> int | None:
        """The watermark as it stands (None before the hub has loaded one): where a socket without since that
        connects now starts. Also while the feed settles at start-up: a replay from there misses nothing."""
        return self._wm.value if self._wm is not None else None

    async def newest_committed_seq(self) -> int | None:
        """For a socket that connected before the hub loaded a watermark; None when the database cannot say
        (the socket then starts from the watermark once ready, as one connecting later would)."""
        try:
            async with self._sessionmaker() as session:
                return await event_service.newest_seq(session=session)
        except Exception as exc:
            if is_database_unavailable(exc):
                return None
            raise

    def open_socket(self, close: CloseCallback) -> None:
        self._sockets.add(close)
        self._no_sockets.clear()

    def close_socket(self, close: CloseCallback) -> None:
        self._sockets.discard(close)
        if not self._sockets:
            self._no_sockets.set()

    def attach(self, subscriber: Subscriber) -> int:
        """Start handing events to the subscriber; returns the watermark it starts after. Everything at or below
        it is in the table already (replay it from there); everything above comes through the queue."""
        self._subscribers.add(subscriber)
        return self.watermark

    def detach(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def was_given_up(self, seq: int) -> bool:
        return any(lo <= seq <= hi for lo, hi, _ in self._given_up)

    async def replay_page(self, after: int, upto: int, limit: int) -> list[FeedEvent]:
        async with self._sessionmaker() as session:
            rows = await event_service.page_after(session=session, after_seq=after, upto_seq=upto, limit=limit)
        return [_from_model(row) for row in rows]

    async def oldest_seq(self) -> int | None:
        async with self._sessionmaker() as session:
            return await event_service.oldest_seq(session=session)

    async def issued_seq(self) -> int:
        async with self._sessionmaker() as session:
            return await event_service.issued_seq(session=session)

    # -- wake-ups ----------------------------------------------------------------------------------------

    async def after_commit(self, session: AsyncSession) -> None:
        """app.state.after_commit_hooks: a request that wrote events has committed."""
        if session.info.get(event_service.SESSION_WROTE_EVENTS):
            self.notify_soon()

    def notify_soon(self) -> None:
        """Events were committed by this process: read them now, and wake the other processes (coalesced)."""
        self._wake.set()
        self._notify_wanted.set()

    def _on_notify(self, conn: asyncpg.Connection, pid: int, channel: str, payload: str) -> None:
        if pid != conn.get_server_pid():  # our own NOTIFY: this process is awake already
            self._wake.set()

    async def _notify_forever(self) -> None:
        pause = self.settings.live_notify_coalesce_ms / 1000
        while True:
            await self._notify_wanted.wait()
            self._notify_wanted.clear()
            conn = self._conn
            if conn is not None:
                try:
                    async with self._conn_lock:
                        await conn.execute(f"NOTIFY {CHANNEL}", timeout=QUERY_TIMEOUT_S)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                    # The other processes' poll finds the events anyway, a little later.
                    log.info("live_notify_failed", error=type(exc).__name__)
            await asyncio.sleep(pause)

    # -- following the table -----------------------------------------------------------------------------

    async def _follow_forever(self) -> None:
        failures = 0
        while True:
            self._connected = False
            try:
                await self._follow_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever broke, the feed must come back: reconnect with backoff and catch up from the table.
                if is_database_unavailable(exc) or isinstance(exc, asyncpg.PostgresError):
                    log.warning("live_listener_lost", error=type(exc).__name__)
                else:
                    log.exception("live_listener_failed")
            # A drop retries soon; attempts that fail back off (with jitter, so processes do not stampede).
            failures = 0 if self._connected else failures + 1
            await asyncio.sleep(min(RECONNECT_MIN_S * 2**failures, RECONNECT_MAX_S) * random.uniform(0.5, 1.0))

    async def _follow_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.settings.database_url,
            timeout=self.settings.db_connect_timeout_s,
            server_settings={"application_name": "jizhou-live"},
        )
        try:
            conn.add_termination_listener(lambda _: self._wake.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            await self._load_state()
            self._conn = conn
            self._connected = True
            self._writers = None
            log.info("live_listener_connected", watermark=self.max_seen)
            self._wake.set()  # catch up at once with whatever was committed while disconnected
            spacing = self.settings.live_cycle_spacing_ms / 1000
            last_cycle, more = -spacing, False
            while True:
                assert self._wm is not None
                interval = GAP_CHECK_INTERVAL_S if self._wm.pending else self.settings.live_poll_interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
                # Under a stream of commits, cycles start at most every `spacing`: what commits in between goes out
                # in one read and one hand-out (one frame per batch socket). After a quiet spell, at once; and a
                # backlog read in chunks (a burst, a catch-up) goes on without pauses.
                if not more and (pause := last_cycle + spacing - self._loop.time()) > 0:
                    await asyncio.sleep(pause)
                self._wake.clear()
                last_cycle = self._loop.time()
                more = await self._cycle(conn)
                if more:
                    self._wake.set()
                # Let the sockets drain what this cycle queued before the next chunk.
                await asyncio.sleep(0)
        finally:
            self._conn = None
            conn.terminate()

    async def _load_state(self) -> None:
        async with self._sessionmaker() as session:
            newest = await event_service.newest_seq(session=session)
            issued = await event_service.issued_seq(session=session)
            self.pruned_through = max(self.pruned_through, await event_service.pruned_through(session=session))
        if self._wm is not None and issued >= self._wm.value:
            return  # a reconnect: carry on from the watermark
        if self._wm is not None:
            # The sequence went backwards: the database was restored. What the sockets hold is another history.
            log.error("live_history_rewound", watermark=self._wm.value, issued=issued)
            self.ready.clear()
            for close in list(self._sockets):
                close(CloseCode.DATABASE_UNAVAILABLE, close_reason("history_rewound", "reconnect; since will reset"))
        s = self.settings
        self._wm = Watermark(newest, grace_s=s.live_gap_grace_s, timeout_s=s.live_gap_timeout_s)
        # Seqs at or below `newest` may belong to transactions still running; sockets wait until those end.
        self._wm.hold_until_quiet(self._loop.time())

    async def _cycle(self, conn: asyncpg.Connection) -> bool:
        """One read and fan-out; True if there are more new rows to read at once."""
        wm = self._wm
        assert wm is not None
        watched = wm.watched()
        limit = self._chunk if wm.held < MAX_HELD else 0
        async with self._conn_lock:
            rows: Sequence[asyncpg.Record] = await conn.fetch(
                FETCH_SQL,
                wm.max_seen,
                limit,
                [lo for lo, _ in watched],
                [hi for _, hi in watched],
                timeout=QUERY_TIMEOUT_S,
            )
        fresh = sum(1 for row in rows if row["seq"] > wm.max_seen)
        now = self._loop.time()
        step = wm.advance([(row["seq"], _from_record(row)) for row in rows], now=now, alive=self._writers)
        for lo, hi in step.given_up:
            # A transaction held an event open longer than the gap timeout: delivery moved on without it.
            log.error("live_gap_given_up", first_seq=lo, last_seq=hi, after_s=self.settings.live_gap_timeout_s)
            self._given_up.append((lo, hi, now + wm.late_watch_s))
        if self._given_up:
            self._given_up = [g for g in self._given_up if g[2] > now]
        await self._publish(step.ready, late=False)
        if step.late:
            log.warning("live_late_events", seqs=[e.seq for e in step.late])
            await self._publish(step.late, late=True)
        if wm.pending:
            async with self._conn_lock:
                writers = await conn.fetchval(WRITERS_SQL, timeout=QUERY_TIMEOUT_S)
            self._writers = frozenset(writers)
            wm.capture(self._writers)
        else:
            self._writers = None
        if wm.settled and not self.ready.is_set():
            log.info("live_feed_ready", watermark=wm.value)
            self.ready.set()
        return limit > 0 and fresh >= limit

    async def _publish(self, events: list[FeedEvent], *, late: bool) -> None:
        """Hand events to every subscriber, in chunks of half a queue with a pause between: a gap that held many
        events back releases them at once, and a healthy socket must get to drain one chunk before the next.
        Each chunk is filtered once per filter in use, and sockets with the same filter share the result."""
        for start in range(0, len(events), self._chunk):
            if start:
                await asyncio.sleep(0)
            chunk = events[start : start + self._chunk]
            for event in chunk:
                if (event.subject_type, event.subject_id) == event_service.RETENTION_SUBJECT:
                    self.pruned_through = max(self.pruned_through, int(event.data.get("through_seq", 0)))
            shares: dict[Hashable, Share] = {}
            overflowed: list[Subscriber] = []
            # Nothing awaits in here: the set does not change while it is walked.
            for subscriber in self._subscribers:
                share = shares.get(subscriber.filter_key)
                if share is None:
                    share = shares[subscriber.filter_key] = subscriber.share_of(chunk, late=late)
                if not subscriber.offer(share):
                    overflowed.append(subscriber)
            self._subscribers.difference_update(overflowed)

    # -- retention ---------------------------------------------------------------------------------------

    async def _prune_forever(self) -> None:
        interval = self.settings.event_prune_interval_s
        # Processes started together do not all prune at once (the advisory lock would make them wait anyway).
        await asyncio.sleep(min(interval, 60.0) * random.uniform(0.5, 1.0))
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_database_unavailable(exc):
                    log.warning("event_prune_postponed", error=type(exc).__name__)
                else:
                    log.exception("event_prune_failed")
            await asyncio.sleep(interval)

    async def prune(self) -> int:
        """Delete events older than the retention, in batches; returns how many."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.event_retention_days)
        total = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                deleted = await event_service.prune(session=session, older_than=cutoff, batch=PRUNE_BATCH)
            if deleted:
                total += deleted
                self.notify_soon()  # the marker event
            if deleted is None or deleted < PRUNE_BATCH:
                break
        if total:
            log.info("event_pruned", deleted=total, older_than=cutoff.isoformat())
        return total


@asynccontextmanager
async def run_live_hub(app: FastAPI) -> AsyncIterator[LiveHub]:
    """In the lifespan: the process's hub as app.state.live_hub, and its after-commit wake-up."""
    hub = LiveHub(app.state.settings, app.state.sessionmaker)
    await hub.start()
    app.state.live_hub = hub
    hooks: list[Any] = app.state.after_commit_hooks
    hooks.append(hub.after_commit)
    try:
        yield hub
    finally:
        hooks.remove(hub.after_commit)
        await hub.stop()
