"""The outbox: delivered in order per partner, retried with capped backoff while the partner is down, never
sent twice by two workers, and its state visible through the API. Real commits (a database of its own);
the partner is simulated by an httpx transport that checks our signature, and time by a simulated clock."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.federation import outbox, signing
from app.main import create_app
from tests.conftest import CommittedDb, make_settings
from tests.federation.helpers import (
    JIZHOU_TO_PINGGU,
    JIZHOU_TO_YUTIAN,
    PINGGU_KEY,
    YUTIAN_KEY,
    incident,
    partners_config,
)

# What each fake partner host checks our requests with, and signs its answers with.
HOST_KEYS = {"pinggu.test": (JIZHOU_TO_PINGGU, PINGGU_KEY), "yutian.test": (JIZHOU_TO_YUTIAN, YUTIAN_KEY)}


@dataclass
class FakePartner:
    """The partners' endpoints: down or up; when up they check our signature and acknowledge, signing the
    answer as the real service does (`answers`: "signed", "unsigned", or "forged" with a key that is not theirs)."""

    up: bool = False
    reject: set[str] = field(default_factory=set)
    received: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    answers: str = "signed"

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        envelope = orjson.loads(body)
        self.attempts.append(envelope["distributionID"])
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        ours, theirs = HOST_KEYS[request.url.host]
        signing.verify(
            method=request.method,
            path=request.url.path,
            query=request.url.query.decode(),
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            secret_for={ours[0]: ours[1].encode()},
            max_skew_s=300,
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if envelope["distributionID"] in self.reject:
            status, answer = (
                422,
                {
                    "distributionKind": "Error",
                    "content": [
                        {
                            "contentType": "error",
                            "contentObject": {"code": "invalid_message", "message": "no", "pointer": "/x"},
                        }
                    ],
                },
            )
        else:
            self.received.append(envelope["distributionID"])
            status, answer = 200, {"distributionKind": "Ack", "distributionReference": [envelope["distributionID"]]}
        content = orjson.dumps(answer)
        headers = {"Content-Type": "application/json"}
        if self.answers != "unsigned":
            key = theirs if self.answers == "signed" else ("intruder-k1", "an-intruder-signs-this-answer-" + "x" * 8)
            headers |= signing.sign_answer(
                status=status,
                request_signature=request.headers[signing.H_SIG],
                body=content,
                key_id=key[0],
                secret=key[1].encode(),
            )
        return httpx.Response(status, content=content, headers=headers)


@dataclass
class Rig:
    settings: Settings
    client: httpx.AsyncClient
    sessionmaker: async_sessionmaker[AsyncSession]
    partner: FakePartner
    http: httpx.AsyncClient


@pytest.fixture
async def rig(committed_db: CommittedDb) -> AsyncIterator[Rig]:
    settings = make_settings(
        committed_db.url,
        federation_partners=partners_config(),
        federation_worker_enabled=False,
        federation_retry_base_s=2.0,
        federation_retry_max_s=300.0,
    )
    app = create_app(settings)
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    partner = FakePartner()
    http = httpx.AsyncClient(transport=httpx.MockTransport(partner))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Rig(settings, client, app.state.sessionmaker, partner, http)
    await http.aclose()
    await engine.dispose()


async def share(rig: Rig, auth: dict[str, str], n: int, partners: list[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        r = await rig.client.post(
            "/api/v1/federation/outbox",
            json={"kind": "incident", "partners": partners or ["pinggu"], "incident": incident(f"JZ-TEST-{i}")},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        out.extend(r.json()["messages"])
    return out


async def test_partner_down_for_an_hour_gets_everything_in_order(rig: Rig, auth: Callable[..., dict[str, str]]) -> None:
    queued = await share(rig, auth(), 4)
    assert [m["state"] for m in queued] == ["pending"] * 4
    start = datetime.now(UTC)
    clock = start

    def now() -> datetime:
        return clock

    # Down for an hour: only the head is tried, less and less often, never more than 5 minutes apart.
    while clock < start + timedelta(hours=1):
        report = await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http, now=now)
        assert not report.delivered
        clock += timedelta(seconds=20)
    assert set(rig.partner.attempts) == {queued[0]["distribution_id"]}, "nothing overtakes the head"
    tries = len(rig.partner.attempts)
    assert 10 <= tries <= 40, tries  # backoff grows to the 5-minute cap: ~20 tries in an hour, not 180

    listed = (await rig.client.get("/api/v1/federation/outbox?partner=pinggu&state=pending", headers=auth())).json()
    assert listed["numberMatched"] == 4
    head = min(listed["items"], key=lambda m: m["id"])
    assert head["attempts"] == tries and "ConnectError" in head["last_error"]
    gap = datetime.fromisoformat(head["next_attempt_at"]) - datetime.fromisoformat(head["last_attempt_at"])
    assert timedelta(seconds=150) <= gap <= timedelta(seconds=300)  # capped, with jitter

    # Back up: the next due pass sends all four, in the order they were queued.
    rig.partner.up = True
    clock += timedelta(minutes=5)
    report = await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http, now=now)
    assert rig.partner.received == [m["distribution_id"] for m in queued]
    assert len(report.delivered) == 4
    done = (await rig.client.get("/api/v1/federation/outbox?partner=pinggu", headers=auth())).json()["items"]
    assert {m["state"] for m in done} == {"delivered"} and all(m["last_error"] is None for m in done)
    one = (await rig.client.get(f"/api/v1/federation/outbox/{queued[0]['id']}", headers=auth())).json()
    assert one["response_status"] == 200 and orjson.loads(one["body"])["distributionID"] == queued[0]["distribution_id"]
    # Nothing is sent again.
    await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http, now=now)
    assert len(rig.partner.received) == 4


async def test_a_refused_message_does_not_block_the_rest(rig: Rig, auth: Callable[..., dict[str, str]]) -> None:
    queued = await share(rig, auth(), 3)
    rig.partner.up = True
    rig.partner.reject = {queued[1]["distribution_id"]}
    await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http)
    states = {
        m["id"]: (m["state"], m["last_error"])
        for m in (await rig.client.get("/api/v1/federation/outbox", headers=auth())).json()["items"]
    }
    assert states[queued[0]["id"]][0] == "delivered"
    assert states[queued[1]["id"]][0] == "rejected" and "invalid_message" in states[queued[1]["id"]][1]
    assert states[queued[2]["id"]][0] == "delivered"


@pytest.mark.parametrize("answers", ["unsigned", "forged"])
async def test_an_answer_the_partner_did_not_sign_settles_nothing(
    rig: Rig, auth: Callable[..., dict[str, str]], answers: str
) -> None:
    # Someone between us and Pinggu answering for it: neither its Ack (the message would count as delivered) nor its
    # Error (it would be given up) is taken; the message stays pending and is retried.
    queued = await share(rig, auth(), 2)
    rig.partner.up, rig.partner.answers = True, answers
    rig.partner.reject = {queued[1]["distribution_id"]}
    await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http)
    head = (await rig.client.get(f"/api/v1/federation/outbox/{queued[0]['id']}", headers=auth())).json()
    assert head["state"] == "pending" and head["attempts"] == 1
    code = "signature_missing" if answers == "unsigned" else "unknown_key"
    assert f"HTTP 200 answer refused, {code}" in head["last_error"]

    # The real partner's signed answers settle both: the Ack delivers, the Error gives up.
    rig.partner.answers = "signed"
    later = datetime.now(UTC) + timedelta(minutes=10)
    await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http, now=lambda: later)
    states = {
        m["id"]: m["state"] for m in (await rig.client.get("/api/v1/federation/outbox", headers=auth())).json()["items"]
    }
    assert states == {queued[0]["id"]: "delivered", queued[1]["id"]: "rejected"}


async def test_unsigned_answers_can_be_allowed_for_a_partner_that_cannot_sign(
    rig: Rig, auth: Callable[..., dict[str, str]]
) -> None:
    queued = await share(rig, auth(), 1)
    rig.partner.up, rig.partner.answers = True, "unsigned"
    rig.settings.federation_require_signed_answers = False
    await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http)
    one = (await rig.client.get(f"/api/v1/federation/outbox/{queued[0]['id']}", headers=auth())).json()
    assert one["state"] == "delivered"


async def test_expired_messages_stop_being_retried(rig: Rig, auth: Callable[..., dict[str, str]]) -> None:
    r = await rig.client.post(
        "/api/v1/federation/outbox",
        json={"kind": "incident", "partners": ["pinggu"], "incident": incident(), "expires_in_s": 600},
        headers=auth(),
    )
    queued = r.json()["messages"][0]
    later = datetime.now(UTC) + timedelta(minutes=11)
    await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http, now=lambda: later)
    one = (await rig.client.get(f"/api/v1/federation/outbox/{queued['id']}", headers=auth())).json()
    assert one["state"] == "expired" and rig.partner.attempts == []


async def test_two_workers_never_send_one_message_twice(rig: Rig, auth: Callable[..., dict[str, str]]) -> None:
    queued = await share(rig, auth(), 6, partners=["pinggu", "yutian"])
    rig.partner.up = True
    rig.partner.delay_s = 0.02
    await asyncio.gather(*(outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http) for _ in range(3)))
    for _ in range(3):  # anything a busy worker skipped is picked up by the next pass
        await outbox.deliver_due(rig.sessionmaker, rig.settings, rig.http)
    assert sorted(rig.partner.received) == sorted(m["distribution_id"] for m in queued)
    assert len(rig.partner.received) == len(set(rig.partner.received)) == 12
    for partner in ("pinggu", "yutian"):
        order = [m["distribution_id"] for m in queued if m["partner"] == partner]
        assert [d for d in rig.partner.received if d in order] == order


async def test_only_the_command_center_sends(rig: Rig, auth: Callable[..., dict[str, str]]) -> None:
    body = {"kind": "incident", "partners": ["pinggu"], "incident": incident()}
    r = await rig.client.post("/api/v1/federation/outbox", json=body, headers=auth("township", township="120119001"))
    assert (r.status_code, r.json()["code"]) == (403, "role_not_allowed")
    r = await rig.client.post(
        "/api/v1/federation/outbox", json={**body, "partners": ["sanhe"]}, headers=auth()
    )  # no keys configured for Sanhe
    assert (r.status_code, r.json()["code"]) == (409, "partner_not_configured")
    bad = {**body, "incident": incident(severity="X")}
    r = await rig.client.post("/api/v1/federation/outbox", json=bad, headers=auth())
    assert r.status_code == 422 and r.json()["details"]["pointer"] == "/incident/severity"
    assert (await rig.client.get("/api/v1/federation/outbox", headers=auth())).json()["numberMatched"] == 0


def test_backoff_is_capped_and_jittered() -> None:
    settings = make_settings("postgresql://x/y", federation_retry_base_s=2.0, federation_retry_max_s=300.0)
    assert outbox.backoff_s(1, settings, rand=lambda: 1.0) == 2.0
    assert outbox.backoff_s(1, settings, rand=lambda: 0.0) == 1.0
    assert outbox.backoff_s(5, settings, rand=lambda: 1.0) == 32.0
    assert outbox.backoff_s(50, settings, rand=lambda: 1.0) == 300.0
    assert outbox.backoff_s(50, settings, rand=lambda: 0.0) == 150.0


async def test_cli_delivery_pass(rig: Rig, auth: Callable[..., dict[str, str]], committed_db: CommittedDb) -> None:
    """`python -m app federation deliver` runs one pass; a partner that does not answer stays pending."""
    import json
    import os
    import socket
    import subprocess
    import sys

    from tests.conftest import ROOT, TEST_SECRET

    await share(rig, auth(), 1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = partners_config(pinggu_endpoint=f"http://127.0.0.1:{port}")
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.url,
        "JIZHOU_JWT_SECRET": TEST_SECRET,
        "JIZHOU_ENVIRONMENT": "test",
        "JIZHOU_FEDERATION_PARTNERS": json.dumps(config),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "federation", "deliver"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["attempted"] == 1 and report["delivered"] == 0
    assert report["outcomes"][0]["state"] == "pending" and "ConnectError" in report["outcomes"][0]["error"]
    head = (await rig.client.get("/api/v1/federation/outbox", headers=auth())).json()["items"][0]
    assert head["attempts"] == 1 and head["next_attempt_at"] is not None
