"""What the feed promises under stress: every committed event, once, in seq order, whatever the writers do."""

import asyncio
import contextlib
import json
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.db import SessionDep
from app.events import service as event_service
from app.main import create_app
from tests.conftest import CommittedDb, make_settings
from tests.live.conftest import (
    Feed,
    Server,
    StartServer,
    committed_seqs,
    db_connect,
    insert_events,
    newest_seq,
    record_events,
    wait_live,
)

OpenFeed = Callable[..., Awaitable[Feed]]


async def churn(url: str, stop: asyncio.Event, *, rollback_share: float = 0.2, seed: int = 0) -> None:
    """One writer: short transactions of 1-3 events, held a random while, some rolled back. Several of them
    together commit out of seq order all the time."""
    rng = random.Random(seed)
    conn = await db_connect(url)
    try:
        while not stop.is_set():
            transaction = conn.transaction()
            await transaction.start()
            await insert_events(conn, rng.randint(1, 3), township=rng.choice([None, "120119001"]))
            await asyncio.sleep(rng.random() * 0.05)
            if rng.random() < rollback_share:
                await transaction.rollback()
            else:
                await transaction.commit()
    finally:
        await conn.close()


async def hold_open(url: str, seconds: float, *, commit: bool) -> int:
    """A transaction that takes its seq, then sits on it while later seqs commit."""
    conn = await db_connect(url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        (seq,) = await insert_events(conn, topic="incident.slow_writer")
        await asyncio.sleep(seconds)
        await (transaction.commit() if commit else transaction.rollback())
        return seq
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def bystanders(url: str) -> AsyncIterator[None]:
    """Long transactions that cannot hold an event seq: a read-only one (like pg_dump's) and a writer of another
    table. Neither may hold back the feed's rolled-back gaps."""
    reader, other_writer = await db_connect(url), await db_connect(url)
    try:
        await reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM event")
        await other_writer.execute(
            "BEGIN; UPDATE shelter SET occupancy = occupancy WHERE id = (SELECT min(id) FROM shelter)"
        )
        yield
    finally:
        for conn in (reader, other_writer):
            await conn.execute("ROLLBACK")
            await conn.close()


@contextlib.asynccontextmanager
async def writers(url: str, count: int) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(churn(url, stop, seed=i)) for i in range(count)]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_concurrent_out_of_order_writers_reach_the_client_in_order_without_gaps(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    # A long gap timeout: rolled-back seqs must be recognized by their transactions ending, not by waiting it out,
    # even while long transactions that write no event run alongside.
    server = await start_server(committed_db.url, JIZHOU_LIVE_GAP_TIMEOUT_S="120")
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        feed = await open_feed(server, "command", since=start)
        await wait_live(feed, conn)
        async with bystanders(committed_db.url):
            async with writers(committed_db.url, 12):
                slow_commit = asyncio.create_task(hold_open(committed_db.url, 2.0, commit=True))
                slow_rollback = asyncio.create_task(hold_open(committed_db.url, 2.5, commit=False))
                via_service = await record_events(
                    committed_db.url,
                    [
                        {"topic": "incident.created", "subject_type": "incident", "subject_id": "7", "data": {"n": i}}
                        for i in range(5)
                    ],
                )
                late_seq, rolled_back_seq = await slow_commit, await slow_rollback
                await asyncio.sleep(0.5)
            expected = await committed_seqs(conn, start)
            # Caught up while the bystanders still run.
            await feed.wait_seq(expected[-1], within=30)
        assert feed.seqs == expected, "every committed event once, in seq order"
        assert late_seq in feed.seqs and rolled_back_seq not in feed.seqs
        assert set(via_service) <= set(feed.seqs)
        assert len(expected) > 100
    finally:
        await conn.close()


async def test_a_transaction_open_past_the_gap_timeout_is_passed_over_then_delivered_late(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    server = await start_server(committed_db.url, JIZHOU_LIVE_GAP_TIMEOUT_S="1")
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        feed = await open_feed(server, "command", since=start)
        warm_up = [await wait_live(feed, conn)]
        stuck = asyncio.create_task(hold_open(committed_db.url, 4.0, commit=True))
        await asyncio.sleep(0.5)
        after = await insert_events(conn, 3)
        await feed.wait_seq(after[-1], within=15)  # one stuck writer does not stall the screens
        late_seq = await stuck
        await feed.wait(lambda f: late_seq in f.seqs, within=15, what="the late event")
        assert feed.seqs == [*warm_up, *after, late_seq]
        assert feed.events[-1].get("late") is True and not any("late" in e for e in feed.events[:-1])
        assert "live_gap_given_up" in server.log()
        # In the table it is in its place: a replay has it in order.
        replay = await open_feed(server, "command", since=start)
        await replay.wait_seq(after[-1])
        assert replay.seqs == [*warm_up, late_seq, *after]
    finally:
        await conn.close()


async def test_resume_across_a_disconnect_has_no_gap_and_no_duplicate(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        async with writers(committed_db.url, 6):
            first = await open_feed(server, "command", since=start)
            await first.wait(lambda f: len(f.seqs) >= 30, what="30 events")
            await first.close()
            received = first.seqs
            # While away: a burst (so the replay is long) and the writers keep committing during the replay.
            await insert_events(conn, 1500)
            second = await open_feed(server, "command", since=received[-1])
            await asyncio.sleep(1.0)
        expected = await committed_seqs(conn, start)
        await second.wait_seq(expected[-1], within=30)
        assert received + second.seqs == expected
    finally:
        await conn.close()


async def test_two_processes_each_deliver_every_event(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    one, two = await asyncio.gather(start_server(committed_db.url), start_server(committed_db.url))
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        on_one, on_two = (
            await open_feed(one, "command", since=start),
            await open_feed(two, "township", since=start, township="120119001"),
        )
        for feed in (on_one, on_two):
            await wait_live(feed, conn)
        async with writers(committed_db.url, 4):
            await record_events(
                committed_db.url,
                [{"topic": "warning.issued", "subject_type": "warning", "subject_id": "1", "data": {}}],
            )
            await asyncio.sleep(1.5)
        expected = await committed_seqs(conn, start)
        await on_one.wait_seq(expected[-1])
        assert on_one.seqs == expected
        township_expected = [
            r["seq"]
            for r in await conn.fetch(
                "SELECT seq FROM event WHERE seq > $1 AND (township_code IS NULL OR township_code = '120119001') "
                "ORDER BY seq",
                start,
            )
        ]
        await on_two.wait_seq(township_expected[-1])
        assert on_two.seqs == township_expected
    finally:
        await conn.close()


async def test_a_commit_in_one_process_wakes_the_others_at_once_by_notify(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    """The other process polls only every 30 s here: the event can only arrive sooner through the NOTIFY that the
    writing process sends after its request commits (the write transaction itself does not notify)."""
    listener = await start_server(committed_db.url, JIZHOU_LIVE_POLL_INTERVAL_S="30")
    writer_app = create_app(make_settings(committed_db.url, live_poll_interval_s=30))

    @writer_app.post("/test-only/events")
    async def write_event(session: SessionDep) -> dict[str, int]:
        seq = await event_service.record(
            session=session, topic="incident.created", subject_type="incident", subject_id="1", actor="t", data={}
        )
        return {"seq": seq}

    conn = await db_connect(committed_db.url)
    try:
        feed = await open_feed(listener, "command", since=await newest_seq(conn))
        await wait_live(feed, conn)
        async with (
            LifespanManager(writer_app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=writer_app), base_url="http://writer") as client,
        ):
            try:
                await asyncio.wait_for(writer_app.state.live_hub.ready.wait(), 20)
            except TimeoutError:
                raise AssertionError("the writing process's hub did not get ready in 20 s") from None
            seqs = [(await client.post("/test-only/events")).json()["seq"] for _ in range(3)]
            await feed.wait_seq(seqs[-1], within=10)
        assert feed.seqs[1:] == seqs
    finally:
        await conn.close()


async def test_an_incident_created_through_one_server_reaches_the_clients_of_another(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed, auth: Callable[..., dict[str, str]]
) -> None:
    """Through the HTTP API of one process, to a socket on another; both poll only every 30 s, so the event can only
    arrive in time by the writing process's after-commit NOTIFY."""
    paths = create_app(make_settings("postgresql://unused/none")).openapi()["paths"]
    if "post" not in paths.get("/api/v1/incidents", {}):
        pytest.skip("no event-writing endpoint on this branch yet (POST /api/v1/incidents)")
    one, two = await asyncio.gather(
        start_server(committed_db.url, JIZHOU_LIVE_POLL_INTERVAL_S="30"),
        start_server(committed_db.url, JIZHOU_LIVE_POLL_INTERVAL_S="30"),
    )
    conn = await db_connect(committed_db.url)
    try:
        feed = await open_feed(two, "township", township="120119001", since=await newest_seq(conn))
        await wait_live(feed, conn)
        headers = auth("command")
        one.tokens_used.append(headers["Authorization"].removeprefix("Bearer "))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{one.port}", timeout=20) as client:
            response = await client.post(
                "/api/v1/incidents",
                headers=headers,
                json={
                    "type": "building_fire",
                    "location": {"type": "Point", "coordinates": [117.405, 40.045]},
                    "title": "live feed test",
                },
            )
        assert response.status_code == 201, response.text
        incident = response.json()
        await feed.wait(lambda f: any(e["topic"] == "incident.created" for e in f.events), within=10, what="incident")
        created = next(e for e in feed.events if e["topic"] == "incident.created")
        assert created["township"] == incident["township"] == "120119001"
        assert created["subject"] == {"type": "incident", "id": str(incident["id"])}
    finally:
        await conn.close()


async def test_a_slow_consumer_is_cut_off_and_resumes_while_a_fast_one_keeps_receiving(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed, token: Callable[..., str]
) -> None:
    # Pings far apart: here only the queue may decide (a client that reads nothing also misses its pongs).
    server = await start_server(committed_db.url, JIZHOU_LIVE_QUEUE_SIZE="64", JIZHOU_LIVE_PING_INTERVAL_S="300")
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        fast = await open_feed(server, "command", since=start)
        bearer = token("command")
        server.tokens_used.append(bearer)
        # The slow client reads nothing for now: max_queue=1 makes its library stop reading the socket, and a small
        # receive buffer keeps the kernel from absorbing the flood for it (loopback buffers grow to 32 MB here).
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        slow = await connect(
            f"{server.url}?since={start}",
            additional_headers={"Authorization": f"Bearer {bearer}"},
            max_queue=1,
            sock=sock,
            compression=None,  # 16 kB of "x" would deflate to nothing on the wire
        )
        # Both must stream live before the flood: a socket that is still catching up from the table has no queue to
        # overflow, it just waits on its send (the heartbeat, not the queue, ends a reader that never reads then).
        warm_up = await wait_live(fast, conn)
        received: list[int] = []
        while not received or received[-1] < warm_up:
            message = json.loads(await asyncio.wait_for(slow.recv(), 20))
            if message["type"] == "event":
                received.append(message["seq"])
        # 1500 events of 16 kB (24 MB: more than the socket buffers on both sides and the queue hold), written at
        # a pace a reading client keeps up with.
        for _ in range(30):
            await conn.execute(
                "INSERT INTO event (topic, subject_type, subject_id, actor, data) SELECT 'incident.updated', "
                "'incident', '1', 'test', jsonb_build_object('padding', repeat('x', 16000)) FROM generate_series(1, 50)"
            )
            await asyncio.sleep(0.1)
        expected = await committed_seqs(conn, start)
        await fast.wait_seq(expected[-1], within=40)
        assert fast.seqs == expected and not fast.closed

        try:
            while True:
                try:
                    message = json.loads(await asyncio.wait_for(slow.recv(), 20))
                except TimeoutError:
                    raise AssertionError(
                        f"the slow client was never closed: got {len(received)} of {len(expected)} events\n"
                        f"{server.log()[-3000:]}"
                    ) from None
                if message["type"] == "event":
                    received.append(message["seq"])
        except ConnectionClosed:
            pass
        assert slow.close_code == 4408
        assert slow.close_reason == f"slow_consumer: resume with since={received[-1]}"
        assert received == expected[: len(received)] and len(received) < len(expected)

        resumed = await open_feed(server, "command", since=received[-1])
        await resumed.wait_seq(expected[-1], within=40)
        assert received + resumed.seqs == expected
    finally:
        await conn.close()


async def test_a_client_that_does_not_answer_pings_is_closed(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    server = await start_server(committed_db.url, JIZHOU_LIVE_PING_INTERVAL_S="0.3", JIZHOU_LIVE_PONG_TIMEOUT_S="0.6")
    alive = await open_feed(server, "viewer")
    silent = await open_feed(server, "viewer", pong=False)
    code, reason = await silent.wait_closed(within=15)
    assert code == 4410 and reason is not None and reason.startswith("heartbeat_timeout")
    await alive.wait(lambda f: sum(m["type"] == "ping" for m in f.messages) >= 5, within=15, what="pings")
    assert not alive.closed


async def test_retention_prunes_old_events_and_an_older_since_gets_a_reset(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        before_old = await newest_seq(conn)
        old = [
            r["seq"]
            for r in await conn.fetch(
                "INSERT INTO event (topic, ts, subject_type, subject_id, actor, data) "
                "SELECT 'incident.created', now() - interval '3 days', 'incident', '1', 'test', '{}' "
                "FROM generate_series(1, 5) RETURNING seq"
            )
        ]
        recent = await insert_events(conn, 2)
        server = await start_server(
            committed_db.url, JIZHOU_EVENT_RETENTION_DAYS="1", JIZHOU_EVENT_PRUNE_INTERVAL_S="0.5"
        )
        for _ in range(100):
            if await conn.fetchval("SELECT count(*) FROM event WHERE seq = ANY($1)", old) == 0:
                break
            await asyncio.sleep(0.2)
        marker = await conn.fetchrow("SELECT seq, data FROM event WHERE topic = 'event.pruned' ORDER BY seq DESC")
        assert marker is not None and json.loads(marker["data"])["through_seq"] == old[-1]

        stale = await open_feed(server, "command", since=before_old)
        await stale.wait_seq(marker["seq"])
        reset = stale.messages[0]
        assert reset["type"] == "reset" and reset["reason"] == "since_pruned"
        assert reset["pruned_through"] == old[-1] and reset["oldest_seq"] == await conn.fetchval(
            "SELECT min(seq) FROM event"
        )
        assert stale.seqs == [*recent, marker["seq"]], "every retained event after since follows the reset"

        fresh = await open_feed(server, "command", since=old[-1])
        await fresh.wait_seq(marker["seq"])
        assert fresh.messages[0]["type"] == "event"
    finally:
        await conn.close()


async def test_a_since_beyond_anything_issued_gets_a_reset_then_live_events(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    feed = await open_feed(server, "command", since=10**15)
    await feed.wait(lambda f: bool(f.messages), what="reset")
    assert feed.messages[0]["type"] == "reset" and feed.messages[0]["reason"] == "since_ahead"
    conn = await db_connect(committed_db.url)
    try:
        seqs = await insert_events(conn)
        await feed.wait_seq(seqs[-1])
    finally:
        await conn.close()


async def test_shutdown_closes_sockets_with_a_going_away_code(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    feed = await open_feed(server, "command")
    await asyncio.sleep(0.2)
    server.terminate()
    code, _ = await feed.wait_closed(within=20)
    # uvicorn answers SIGTERM with 1012 (service restart) before the app's own shutdown would send 1001.
    assert code in (1001, 1012)
    await server.wait_exit()  # uvicorn re-raises the SIGTERM once it has shut down gracefully
    assert "Application shutdown complete" in server.log()


async def test_a_server_with_the_feed_off_refuses_sockets_and_its_writes_reach_a_resume_elsewhere(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed, auth: Callable[..., dict[str, str]]
) -> None:
    """JIZHOU_LIVE_ENABLED=false: no hub, the handshake is refused with 1013 `live_disabled`, and writes still record
    their events, which a client resuming with since on a process with the feed on receives."""
    off, on = await asyncio.gather(
        start_server(committed_db.url, JIZHOU_LIVE_ENABLED="false"), start_server(committed_db.url)
    )
    conn = await db_connect(committed_db.url)
    try:
        since = await newest_seq(conn)
        refused = await open_feed(off, "command", since=since)
        code, reason = await refused.wait_closed(within=10)
        assert code == 1013 and reason is not None and reason.startswith("live_disabled"), (code, reason)
        assert "live_listener_connected" not in off.log()  # no hub, no LISTEN connection
        headers = auth("command")
        off.tokens_used.append(headers["Authorization"].removeprefix("Bearer "))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{off.port}", timeout=20) as client:
            response = await client.post(
                "/api/v1/incidents",
                headers=headers,
                json={
                    "type": "building_fire",
                    "location": {"type": "Point", "coordinates": [117.405, 40.045]},
                    "title": "written with the feed off",
                },
            )
        assert response.status_code == 201, response.text
        written = await committed_seqs(conn, since)
        assert written, "the write recorded no event"
        feed = await open_feed(on, "command", since=since)
        await feed.wait_seq(written[-1], within=15)
        assert feed.seqs[: len(written)] == written
        created = next(e for e in feed.events if e["topic"] == "incident.created")
        assert created["subject"] == {"type": "incident", "id": str(response.json()["id"])}
    finally:
        await conn.close()
