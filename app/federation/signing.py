"""Request signatures between partners: HMAC-SHA256 over method, path, query, timestamp, key id and the
body digest.

Every federation request carries
    Content-Digest: sha-256=:<base64 sha-256 of the body>:        (RFC 9530; of the empty body for a GET)
    Fed-Key-Id:     <key id>                                        (names the partner and its secret)
    Fed-Timestamp:  <unix seconds>                                  (refused when more than 5 minutes off)
    Fed-Signature:  <base64 HMAC-SHA256(secret, signing string)>
where the signing string is, lines joined by "\\n":
    jizhou-fed-hmac-sha256-v1
    <METHOD>
    <path>                 (as sent, without the query)
    <query>                (raw, without "?"; empty line when none)
    <timestamp>
    <key id>
    <Content-Digest header value>
The body digest is checked against the body actually received, so the signature covers the body.
Secrets are per partner and per direction, from the environment (JIZHOU_FEDERATION_PARTNERS).

Answers are signed the same way, by the answering side with its own key for that partner, over
    jizhou-fed-hmac-sha256-v1-answer
    <HTTP status>
    <the request's Fed-Signature>   (binds the answer to the one request it answers)
    <timestamp>
    <key id>
    <Content-Digest header value>
so a sender only takes an Ack (message delivered) or a permanent Error (message given up) that the
partner really gave, for this very request.
"""

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

SCHEME = "jizhou-fed-hmac-sha256-v1"
ANSWER_SCHEME = "jizhou-fed-hmac-sha256-v1-answer"
H_DIGEST = "Content-Digest"
H_KEY = "Fed-Key-Id"
H_TS = "Fed-Timestamp"
H_SIG = "Fed-Signature"

_DIGEST_RE = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):\s*(?:,|$)")


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def signing_string(*, method: str, path: str, query: str, timestamp: str, key_id: str, digest: str) -> bytes:
    return "\n".join((SCHEME, method.upper(), path, query, timestamp, key_id, digest)).encode()


def answer_signing_string(*, status: int, request_signature: str, timestamp: str, key_id: str, digest: str) -> bytes:
    return "\n".join((ANSWER_SCHEME, str(status), request_signature.strip(), timestamp, key_id, digest)).encode()


def _mac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def sign(
    *, method: str, path: str, query: str, body: bytes, key_id: str, secret: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers that sign one request."""
    timestamp = str(int(now if now is not None else time.time()))
    digest = content_digest(body)
    signature = _mac(
        secret,
        signing_string(method=method, path=path, query=query, timestamp=timestamp, key_id=key_id, digest=digest),
    )
    return {H_DIGEST: digest, H_KEY: key_id, H_TS: timestamp, H_SIG: signature}


def sign_answer(
    *, status: int, request_signature: str, body: bytes, key_id: str, secret: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers that sign one answer to a signed request."""
    timestamp = str(int(now if now is not None else time.time()))
    digest = content_digest(body)
    signature = _mac(
        secret,
        answer_signing_string(
            status=status, request_signature=request_signature, timestamp=timestamp, key_id=key_id, digest=digest
        ),
    )
    return {H_DIGEST: digest, H_KEY: key_id, H_TS: timestamp, H_SIG: signature}


class SignatureError(Exception):
    """Why a request's signature was refused; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Verified:
    key_id: str
    timestamp: int


SigningString = Callable[[str, str, str], bytes]  # (timestamp, key id, digest) -> what the MAC covers


def verify(
    *,
    method: str,
    path: str,
    query: str,
    body: bytes,
    headers: dict[str, str],
    secret_for: dict[str, bytes],
    max_skew_s: int,
    now: float | None = None,
) -> Verified:
    """Check one request; raises SignatureError naming the first thing wrong.

    headers: lower-cased names. secret_for: key id -> secret of every configured inbound key.
    """
    return _verify(
        lambda timestamp, key_id, digest: signing_string(
            method=method, path=path, query=query, timestamp=timestamp, key_id=key_id, digest=digest
        ),
        body=body,
        headers=headers,
        secret_for=secret_for,
        max_skew_s=max_skew_s,
        now=now,
        what="request",
    )


def verify_answer(
    *,
    status: int,
    request_signature: str,
    body: bytes,
    headers: dict[str, str],
    secret_for: dict[str, bytes],
    max_skew_s: int,
    now: float | None = None,
) -> Verified:
    """Check a partner's answer to our signed request (secret_for: that partner's keys only)."""
    return _verify(
        lambda timestamp, key_id, digest: answer_signing_string(
            status=status, request_signature=request_signature, timestamp=timestamp, key_id=key_id, digest=digest
        ),
        body=body,
        headers=headers,
        secret_for=secret_for,
        max_skew_s=max_skew_s,
        now=now,
        what="answer",
    )


def _verify(
    string: SigningString,
    *,
    body: bytes,
    headers: dict[str, str],
    secret_for: dict[str, bytes],
    max_skew_s: int,
    now: float | None,
    what: str,
) -> Verified:
    key_id = headers.get(H_KEY.lower())
    timestamp = headers.get(H_TS.lower())
    signature = headers.get(H_SIG.lower())
    digest = headers.get(H_DIGEST.lower())
    if not key_id or not timestamp or not signature or not digest:
        missing = [h for h, v in ((H_KEY, key_id), (H_TS, timestamp), (H_SIG, signature), (H_DIGEST, digest)) if not v]
        raise SignatureError("signature_missing", f"the {what} is not signed (missing {', '.join(missing)})")
    secret = secret_for.get(key_id)
    if secret is None:
        raise SignatureError("unknown_key", f"no partner has the key id {key_id!r}")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("invalid_timestamp", f"{H_TS} must be unix seconds")
    ts = int(timestamp)
    current = now if now is not None else time.time()
    if abs(current - ts) > max_skew_s:
        raise SignatureError(
            "stale_timestamp", f"{H_TS} is {int(current - ts)} s off the server clock (at most {max_skew_s} s allowed)"
        )
    match = _DIGEST_RE.search(digest)
    if match is None:
        raise SignatureError("invalid_digest", f"{H_DIGEST} must carry a sha-256 digest (RFC 9530)", 400)
    actual = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if not hmac.compare_digest(match.group(1), actual):
        raise SignatureError("digest_mismatch", f"the {what} body does not match its Content-Digest")
    expected = _mac(secret, string(timestamp, key_id, digest))
    if not hmac.compare_digest(expected, signature.strip()):
        raise SignatureError("bad_signature", f"the {what} signature does not verify")
    return Verified(key_id=key_id, timestamp=ts)
