"""The feed as a client sees it: who gets which events, how refusals read, the token in its three places."""

from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import connect

from tests.conftest import CommittedDb
from tests.live.conftest import Feed, Server, db_connect, insert_events, newest_seq, record_events

A, B = "120119001", "120119104"

OpenFeed = Callable[..., Awaitable[Feed]]


# These tests only read relative to the newest seq they saw: they share one database and one server.
@pytest.fixture
def committed_db(shared_db: CommittedDb) -> CommittedDb:
    return shared_db


@pytest.fixture
def server(shared_server: Server) -> Server:
    return shared_server


async def test_each_role_gets_its_scope_and_nothing_else(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        command = await open_feed(server, "command", since=start)
        viewer = await open_feed(server, "viewer", since=start)
        town_a = await open_feed(server, "township", township=A, since=start)
        town_b = await open_feed(server, "township", township=B, since=start)
        responder = await open_feed(server, "responder", team=3, since=start)

        in_a = await record_events(
            committed_db.url,
            [{"topic": "incident.created", "subject_type": "incident", "subject_id": "1", "data": {}, "township": A}],
        )
        in_b = await insert_events(conn, topic="incident.created", township=B)
        district = await insert_events(conn, topic="warning.issued", township=None)
        team_3 = await insert_events(conn, topic="team.status_changed", subject_type="team", subject_id="3", township=B)
        team_4 = await insert_events(conn, topic="team.status_changed", subject_type="team", subject_id="4", township=A)
        dispatch_3 = await insert_events(
            conn,
            topic="dispatch.created",
            subject_type="dispatch",
            subject_id="9",
            township=A,
            data={"team_ids": [3, 5]},
        )
        last = dispatch_3[-1]
        everything = in_a + in_b + district + team_3 + team_4 + dispatch_3

        for feed in (command, viewer):
            await feed.wait_seq(last)
            assert feed.seqs == everything
        await town_a.wait_seq(last)
        assert town_a.seqs == in_a + district + team_4 + dispatch_3
        await town_b.wait_seq(team_3[-1])
        await insert_events(conn, topic="warning.issued")  # a later district-wide event: B has had all its own
        await town_b.wait(lambda f: len(f.seqs) == 4, what="township B's events")
        assert town_b.seqs[:3] == in_b + district + team_3
        await responder.wait_seq(last)
        assert responder.seqs == team_3 + dispatch_3
        event = responder.events[0]
        assert set(event) >= {"type", "seq", "topic", "ts", "township", "data"}
        assert event["topic"] == "team.status_changed" and event["township"] == B
    finally:
        await conn.close()


async def test_subscribe_narrows_by_topic_and_township(
    committed_db: CommittedDb, server: Server, open_feed: OpenFeed
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        feed = await open_feed(server, "command", since=start)
        await feed.send({"type": "subscribe", "topics": ["incident.*"], "townships": [A]})
        await feed.wait(lambda f: any(m["type"] == "subscribed" for m in f.messages), what="subscribed")
        wanted = await insert_events(conn, topic="incident.updated", township=A)
        await insert_events(conn, topic="incident.updated", township=B)
        await insert_events(conn, topic="team.status_changed", township=A)
        wanted += await insert_events(conn, topic="incident.closed", township=None)
        await feed.wait_seq(wanted[-1])
        assert feed.seqs == wanted
        # The initial filter can come with the query, so even the replay is filtered.
        replay = await open_feed(server, "command", since=start, query=f"topics=incident.*&townships={A}")
        await replay.wait_seq(wanted[-1])
        assert replay.seqs == wanted
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("role", "kwargs", "query", "code", "reason_start"),
    [
        (None, {}, "", 4401, "unauthorized"),
        ("bad", {}, "", 4401, "invalid_token"),
        ("expired", {}, "", 4401, "token_expired"),
        ("partner", {"partner": "pinggu"}, "", 4403, "partner_not_allowed"),
        ("township", {"township": A}, f"townships={B}", 4403, "forbidden"),
        ("command", {}, "since=-1", 4400, "bad_request"),
        ("command", {}, "since=abc", 4400, "bad_request"),
        ("command", {}, "topics=Incident!", 4400, "bad_request"),
    ],
)
async def test_refusals_close_with_a_code_and_a_reason(
    server: Server,
    token: Callable[..., str],
    role: str | None,
    kwargs: dict[str, str],
    query: str,
    code: int,
    reason_start: str,
) -> None:
    headers = {}
    if role == "bad":
        headers["Authorization"] = "Bearer not.a.jwt"
    elif role == "expired":
        headers["Authorization"] = f"Bearer {token('command', ttl_s=-10)}"
    elif role is not None:
        headers["Authorization"] = f"Bearer {token(role, **kwargs)}"
    async with connect(server.url + (f"?{query}" if query else ""), additional_headers=headers) as ws:
        feed = Feed(ws)
        close_code, reason = await feed.wait_closed(10)
    assert close_code == code
    assert reason is not None and reason.startswith(reason_start)


@pytest.mark.parametrize(
    "message",
    ['{"type": "dance"}', "not json", '{"type": "subscribe", "topics": []}', '{"type": "subscribe", "topic": ["x"]}'],
)
async def test_a_bad_client_message_closes_with_4400(server: Server, open_feed: OpenFeed, message: str) -> None:
    feed = await open_feed(server, "viewer")
    await feed.ws.send(message)
    code, reason = await feed.wait_closed(10)
    assert code == 4400 and reason is not None and reason.startswith("bad_request")


async def test_a_township_token_subscribing_to_another_township_is_closed_4403(
    server: Server, open_feed: OpenFeed
) -> None:
    feed = await open_feed(server, "township", township=A)
    await feed.send({"type": "subscribe", "topics": ["*"], "townships": [B]})
    code, _ = await feed.wait_closed(10)
    assert code == 4403


async def test_browsers_pass_the_token_as_subprotocol_or_query_and_it_never_reaches_the_log(
    committed_db: CommittedDb, server: Server, token: Callable[..., str]
) -> None:
    conn = await db_connect(committed_db.url)
    try:
        start = await newest_seq(conn)
        by_protocol, by_query = token("viewer"), token("township", township=A)
        server.tokens_used += [by_protocol, by_query]
        async with (
            connect(f"{server.url}?since={start}", subprotocols=["bearer", by_protocol]) as ws1,  # type: ignore[list-item]
            connect(f"{server.url}?since={start}&access_token={by_query}") as ws2,
        ):
            assert ws1.subprotocol == "bearer"
            feeds = Feed(ws1), Feed(ws2)
            seqs = await insert_events(conn, township=A)
            for feed in feeds:
                await feed.wait_seq(seqs[-1])
        # uvicorn logs the websocket's path and query: the token in it is redacted (Server.stop() checks that
        # neither token appears anywhere in the log).
        assert "access_token=[redacted]" in server.log()
    finally:
        await conn.close()


async def test_the_socket_is_closed_when_its_token_expires(server: Server, token: Callable[..., str]) -> None:
    short = token("viewer", ttl_s=2)
    server.tokens_used.append(short)
    async with connect(server.url, additional_headers={"Authorization": f"Bearer {short}"}) as ws:
        feed = Feed(ws)
        code, reason = await feed.wait_closed(15)
    assert code == 4401 and reason is not None and reason.startswith("token_expired")
