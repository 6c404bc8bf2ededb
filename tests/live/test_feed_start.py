"""A screen that connects while a freshly started process's feed is still settling gets every event committed
after it connected: it starts from what the hub knew then, not from where the feed stands once ready."""

import asyncio
from collections.abc import Awaitable, Callable

from tests.conftest import CommittedDb
from tests.live.conftest import Feed, Server, StartServer, db_connect, insert_events

OpenFeed = Callable[..., Awaitable[Feed]]


async def test_a_socket_connected_before_the_feed_is_ready_misses_nothing_committed_meanwhile(
    committed_db: CommittedDb, start_server: StartServer, open_feed: OpenFeed
) -> None:
    # A transaction holding a write lock on the event table when the process starts: the hub's watermark
    # cannot settle until it ends (seqs it may commit are below the watermark), so the feed stays not ready.
    holder = await db_connect(committed_db.url)
    writer = await db_connect(committed_db.url)
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("LOCK TABLE event IN ROW EXCLUSIVE MODE")
        server: Server = await start_server(committed_db.url)  # ready for HTTP; the feed is not
        feed = await open_feed(server, "command")  # accepted; waits for the feed without since
        await asyncio.sleep(0.5)
        assert feed.events == [] and not feed.closed
        (seq,) = await insert_events(writer, 1, subject_id="started")  # committed while the socket waits
        await asyncio.sleep(0.5)  # the hub reads it, but must not settle past it for the waiting socket
        await hold.rollback()
        await feed.wait_seq(seq)
        assert seq in feed.seqs
        assert len(feed.seqs) == len(set(feed.seqs)), feed.seqs  # no duplicate either
    finally:
        await holder.close()
        await writer.close()
