"""`?batch=true`: the events of a hub cycle in one `batch` message per socket, with every promise of the feed kept."""

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.live.schemas import BATCH_MAX_BYTES
from tests.conftest import CommittedDb
from tests.live.conftest import (
    Feed,
    Server,
    StartServer,
    committed_seqs,
    db_connect,
    insert_events,
    newest_seq,
    wait_live,
)
from tests.live.test_feed_delivery import writers

OpenFeed = Callable[..., Awaitable[Feed]]
A = "120119001"


async def test_batch_clients_get_every_event_in_seq_order_in_batch_frames_next_to_plain_ones(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        batched = await open_feed(server, "command", since=start, query="batch=true")
        batched_too = await open_feed(server, "viewer", since=start, query="batch=true")
        township = await open_feed(server, "township", since=start, township=A, query="batch=true")
        narrowed = await open_feed(server, "command", since=start, query=f"batch=true&townships={A}&topics=incident.*")
        plain = await open_feed(server, "command", since=start)
        for feed in (batched, batched_too, township, plain):
            await wait_live(feed, conn)
        async with writers(committed_db.url, 6):
            await asyncio.sleep(1.0)
        many = await insert_events(conn, 200, township=A)  # one commit: one cycle, one frame for all of them
        expected = await committed_seqs(conn, start)
        for feed in (batched, batched_too, plain):
            await feed.wait_seq(expected[-1], within=30)
            assert feed.seqs == expected, "every committed event once, in seq order"
        rows = await conn.fetch(
            "SELECT seq, topic FROM event WHERE seq > $1 AND (township_code IS NULL OR township_code = $2) "
            "ORDER BY seq",
            start,
            A,
        )
        in_scope = [r["seq"] for r in rows]
        await township.wait_seq(in_scope[-1])
        assert township.seqs == in_scope
        incidents = [r["seq"] for r in rows if r["topic"].startswith("incident.")]  # not the test.warm_up ones
        await narrowed.wait_seq(incidents[-1])
        assert narrowed.seqs == incidents
        for feed in (batched, batched_too, township, narrowed):
            assert not any(m["type"] == "event" for m in feed.messages), "events come only inside batches"
            assert any(set(many) <= {e["seq"] for e in batch} for batch in feed.batches), "one commit, one frame"
        assert not plain.batches and len(plain.events) == len(expected), "a client that did not ask: one per frame"
        assert plain.events == batched.events, "the same messages, batched or not"
    finally:
        await conn.close()


async def test_a_batch_client_resumes_across_a_disconnect_without_gap_or_duplicate(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        async with writers(committed_db.url, 6):
            first = await open_feed(server, "command", since=start, query="batch=true")
            await first.wait(lambda f: len(f.seqs) >= 30, what="30 events")
            await first.close()
            received = first.seqs
            # While away: a burst longer than a replay page, and the writers keep committing during the replay.
            await insert_events(conn, 1500)
            second = await open_feed(server, "command", since=received[-1], query="batch=true")
            await asyncio.sleep(1.0)
        expected = await committed_seqs(conn, start)
        await second.wait_seq(expected[-1], within=30)
        assert received + second.seqs == expected
        assert second.batches and not any(m["type"] == "event" for m in second.messages)
        assert len(second.batches) < len(second.seqs) / 10, "the replay goes out a page at a time"
    finally:
        await conn.close()


async def test_a_big_burst_is_split_into_frames_under_the_size_limit(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        feed = await open_feed(
            server, "command", since=await newest_seq(conn), query="batch=true", max_size=2**20, compression=None
        )
        await wait_live(feed, conn)
        seqs = [
            r["seq"]
            for r in await conn.fetch(
                "INSERT INTO event (topic, subject_type, subject_id, actor, data) SELECT 'incident.updated', "
                "'incident', '1', 'test', jsonb_build_object('padding', repeat('x', 16000)) "
                "FROM generate_series(1, 60) RETURNING seq"
            )
        ]
        await feed.wait_seq(seqs[-1])
        frames = [b for b in feed.batches if b[0]["seq"] >= seqs[0]]
        assert len(frames) > 1 and [e["seq"] for b in frames for e in b] == seqs
        assert all(len(json.dumps(b, separators=(",", ":"))) <= BATCH_MAX_BYTES for b in frames)
    finally:
        await conn.close()


async def test_a_slow_batch_consumer_is_cut_off_by_events_waiting_and_resumes(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed, token: Callable[..., str]
) -> None:
    # As test_feed_delivery's slow consumer, but both clients batched: the bound counts events, not frames.
    server = await start_server(committed_db.url, JIZHOU_LIVE_QUEUE_SIZE="64", JIZHOU_LIVE_PING_INTERVAL_S="300")
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        fast = await open_feed(server, "command", since=start, query="batch=true")
        bearer = token("command")
        server.tokens_used.append(bearer)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        slow = await connect(
            f"{server.url}?since={start}&batch=true",
            additional_headers={"Authorization": f"Bearer {bearer}"},
            max_queue=1,
            sock=sock,
            compression=None,
        )
        warm_up = await wait_live(fast, conn)
        received: list[int] = []

        async def read_slow() -> None:
            message = json.loads(await asyncio.wait_for(slow.recv(), 20))
            if message["type"] == "batch":
                received.extend(e["seq"] for e in message["events"])

        while not received or received[-1] < warm_up:
            await read_slow()
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
                    await read_slow()
                except TimeoutError:
                    raise AssertionError(f"the slow client was never closed: got {len(received)}") from None
        except ConnectionClosed:
            pass
        assert slow.close_code == 4408
        assert slow.close_reason == f"slow_consumer: resume with since={received[-1]}"
        assert received == expected[: len(received)] and len(received) < len(expected)

        resumed = await open_feed(server, "command", since=received[-1], query="batch=true")
        await resumed.wait_seq(expected[-1], within=40)
        assert received + resumed.seqs == expected
    finally:
        await conn.close()


async def test_heartbeats_still_flow_to_a_batch_client_and_a_bad_flag_is_refused(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    server = await start_server(committed_db.url, JIZHOU_LIVE_PING_INTERVAL_S="0.3", JIZHOU_LIVE_PONG_TIMEOUT_S="0.6")
    alive = await open_feed(server, "viewer", query="batch=true")
    silent = await open_feed(server, "viewer", query="batch=1", pong=False)
    code, reason = await silent.wait_closed(within=15)
    assert code == 4410 and reason is not None and reason.startswith("heartbeat_timeout")
    await alive.wait(lambda f: sum(m["type"] == "ping" for m in f.messages) >= 3, within=15, what="pings")
    assert not alive.closed
    refused = await open_feed(server, "viewer", query="batch=yes")
    code, reason = await refused.wait_closed(within=10)
    assert code == 4400 and reason is not None and "batch" in reason
