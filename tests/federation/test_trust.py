"""Trust: every federation request is signed and checked; failures are 401/400 with a code and store nothing."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.federation import signing
from tests.federation.conftest import snapshot
from tests.federation.helpers import JIZHOU_TO_PINGGU, PINGGU_KEY, YUTIAN_KEY, dumps, envelope, incident, signed

PATH = "/federation/v1/messages"


def share() -> bytes:
    return dumps(envelope([{"contentType": "incident", "contentObject": incident()}]))


async def test_signed_message_is_accepted(fed_client: httpx.AsyncClient, session: AsyncSession) -> None:
    body = share()
    r = await fed_client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert r.status_code == 200, r.text
    assert r.json()["distributionKind"] == "Ack"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unsigned", 401, "signature_missing"),
        ("unknown_key", 401, "unknown_key"),
        ("bad_signature", 401, "bad_signature"),
        ("wrong_secret", 401, "bad_signature"),
        ("body_tampered", 401, "digest_mismatch"),
        ("stale_timestamp", 401, "stale_timestamp"),
        ("future_timestamp", 401, "stale_timestamp"),
        ("other_path", 401, "bad_signature"),
        ("expired_message", 400, "message_expired"),
        ("sender_mismatch", 403, "sender_mismatch"),
    ],
)
async def test_refused_requests_store_nothing(
    fed_client: httpx.AsyncClient, session: AsyncSession, case: str, status: int, code: str
) -> None:
    before = await snapshot(session)
    body = share()
    headers = signed("POST", PATH, body)
    if case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "unknown_key":
        headers = signed("POST", PATH, body, key=("nobody-k1", PINGGU_KEY[1]))
    elif case == "bad_signature":
        headers[signing.H_SIG] = headers[signing.H_SIG][:-4] + "AAA="
    elif case == "wrong_secret":
        headers = signed("POST", PATH, body, key=(PINGGU_KEY[0], "x" * 40))
    elif case == "body_tampered":
        body = body.replace(b"Forest fire", b"Forest FIRE")
    elif case == "stale_timestamp":
        headers = signed("POST", PATH, body, now=time.time() - 360)
    elif case == "future_timestamp":
        headers = signed("POST", PATH, body, now=time.time() + 360)
    elif case == "other_path":
        headers = signed("POST", "/federation/v1/other", body)
    elif case == "expired_message":
        past = datetime.now(UTC) - timedelta(hours=2)
        body = dumps(
            envelope(
                [{"contentType": "incident", "contentObject": incident()}],
                sent=past,
                expires=past + timedelta(minutes=30),
            )
        )
        headers = signed("POST", PATH, body)
    elif case == "sender_mismatch":
        # Yutian's key, Pinggu's name: one partner cannot speak for another.
        headers = signed("POST", PATH, body, key=YUTIAN_KEY)
    r = await fed_client.post(PATH, content=body, headers=headers)
    assert r.status_code == status, r.text
    payload = r.json()
    if "distributionKind" in payload:  # refused after authentication: an Error envelope
        assert payload["distributionKind"] == "Error"
        assert payload["content"][0]["contentObject"]["code"] == code
        assert r.headers["Fed-Error-Code"] == code
    else:
        assert payload["code"] == code
    assert await snapshot(session) == before


def check_answer(response: httpx.Response, request_signature: str, status: int | None = None) -> None:
    """Verify our answer as Pinggu does: with the key we sign to Pinggu, over the request it answers."""
    signing.verify_answer(
        status=response.status_code if status is None else status,
        request_signature=request_signature,
        body=response.content,
        headers={k.lower(): v for k, v in response.headers.items()},
        secret_for={JIZHOU_TO_PINGGU[0]: JIZHOU_TO_PINGGU[1].encode()},
        max_skew_s=300,
    )


async def test_answers_are_signed_for_the_one_request_they_answer(fed_client: httpx.AsyncClient) -> None:
    body = share()
    headers = signed("POST", PATH, body)
    ack = await fed_client.post(PATH, content=body, headers=headers)
    assert ack.status_code == 200 and ack.headers[signing.H_KEY] == JIZHOU_TO_PINGGU[0]
    check_answer(ack, headers[signing.H_SIG])

    # Not transferable: to another request, or with another status, the same answer does not verify.
    other = signed("POST", PATH, share())
    for request_signature, status in ((other[signing.H_SIG], None), (headers[signing.H_SIG], 422)):
        with pytest.raises(signing.SignatureError) as refused:
            check_answer(ack, request_signature, status)
        assert refused.value.code == "bad_signature"

    # The replayed answer (same bytes) is signed for the retransmission that asked.
    again = signed("POST", PATH, body)
    replay = await fed_client.post(PATH, content=body, headers=again)
    assert replay.headers["Fed-Replay"] == "true" and replay.content == ack.content
    check_answer(replay, again[signing.H_SIG])

    # An Error envelope is signed too: a sender gives a message up on it.
    invalid = dumps(envelope([{"contentType": "incident", "contentObject": {"incidentID": "PG-1"}}]))
    invalid_headers = signed("POST", PATH, invalid)
    error = await fed_client.post(PATH, content=invalid, headers=invalid_headers)
    assert error.status_code == 422 and error.json()["distributionKind"] == "Error"
    check_answer(error, invalid_headers[signing.H_SIG])

    # A request that is not authenticated gets no signature: there is no partner to sign for.
    unsigned = await fed_client.post(PATH, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and signing.H_SIG not in unsigned.headers


async def test_timestamp_within_five_minutes_is_accepted(fed_client: httpx.AsyncClient) -> None:
    body = share()
    r = await fed_client.post(PATH, content=body, headers=signed("POST", PATH, body, now=time.time() - 290))
    assert r.status_code == 200, r.text


async def test_district_token_cannot_pose_as_partner(
    fed_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], session: AsyncSession
) -> None:
    before = await snapshot(session)
    body = share()
    # With or without a valid partner signature next to it, a command token is refused on /federation/v1.
    for headers in ({**auth("command"), "Content-Type": "application/json"}, {**signed("POST", PATH, body), **auth()}):
        r = await fed_client.post(PATH, content=body, headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "not_a_partner"
    r = await fed_client.get("/federation/v1/resources", headers=auth("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "not_a_partner")
    assert await snapshot(session) == before


async def test_partner_token_alone_cannot_post_messages(
    fed_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]], session: AsyncSession
) -> None:
    before = await snapshot(session)
    body = share()
    r = await fed_client.post(
        PATH, content=body, headers={**auth("partner", partner="pinggu"), "Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (401, "signature_missing")
    assert await snapshot(session) == before


async def test_partner_token_cannot_reach_the_district_api(
    fed_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]
) -> None:
    for path in ("/api/v1/teams", "/api/v1/federation/aid-requests", "/api/v1/federation/outbox"):
        r = await fed_client.get(path, headers=auth("partner", partner="pinggu"))
        assert (r.status_code, r.json()["code"]) == (403, "partner_not_allowed"), path


async def test_resources_need_a_partner(fed_client: httpx.AsyncClient, auth: Callable[..., dict[str, str]]) -> None:
    path = "/federation/v1/resources"
    r = await fed_client.get(path)
    assert (r.status_code, r.json()["code"]) == (401, "signature_missing")
    r = await fed_client.get(path, headers=signed("GET", path, key=("nobody", "y" * 40)))
    assert (r.status_code, r.json()["code"]) == (401, "unknown_key")
    r = await fed_client.get(path, headers=signed("GET", path))
    assert r.status_code == 200 and r.json()["partner"] == "pinggu"
    r = await fed_client.get(path, headers=auth("partner", partner="yutian"))
    assert r.status_code == 200 and r.json()["partner"] == "yutian"
    # A signature and a token that disagree on who is calling are refused.
    r = await fed_client.get(path, headers={**signed("GET", path), **auth("partner", partner="yutian")})
    assert (r.status_code, r.json()["code"]) == (403, "partner_mismatch")


async def test_inactive_partner_is_refused(fed_client: httpx.AsyncClient, session: AsyncSession) -> None:
    from sqlalchemy import update

    from app.partners.models import Partner

    await session.execute(update(Partner).where(Partner.id == "pinggu").values(active=False))
    before = await snapshot(session)
    body = share()
    r = await fed_client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert (r.status_code, r.json()["code"]) == (403, "partner_inactive")
    assert await snapshot(session) == before


def test_settings_refuse_weak_or_shared_keys() -> None:
    from pydantic import ValidationError

    from tests.conftest import make_settings

    with pytest.raises(ValidationError, match="32"):
        make_settings("postgresql://x/y", federation_partners={"pinggu": {"inbound_keys": {"k": "short"}}})
    with pytest.raises(ValidationError, match="used by"):
        make_settings(
            "postgresql://x/y",
            federation_partners={
                "pinggu": {"inbound_keys": {"same": "a" * 40}},
                "sanhe": {"inbound_keys": {"same": "b" * 40}},
            },
        )
