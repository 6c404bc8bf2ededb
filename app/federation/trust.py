"""Who is calling the federation endpoints: a partner proven by its request signature (or, for reads,
by a partner token). District tokens never pass here, and partner tokens never pass /api/v1."""

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import decode_token
from app.config import Settings
from app.db import SessionDep
from app.errors import AppError, Forbidden, Unauthorized
from app.federation import signing
from app.partners.models import Partner
from app.ratelimit import RateLimiter
from app.users.models import Role


@dataclass(frozen=True, slots=True)
class PartnerCaller:
    partner_id: str
    roles: list[str]
    via: str  # "signature" | "token"
    key_id: str | None = None
    body: bytes = field(default=b"", repr=False)

    @property
    def actor(self) -> str:
        return f"partner:{self.partner_id}"


def inbound_secrets(settings: Settings) -> tuple[dict[str, bytes], dict[str, str]]:
    """key id -> secret, and key id -> partner id, of every configured inbound key."""
    secrets: dict[str, bytes] = {}
    owners: dict[str, str] = {}
    for partner_id, config in settings.federation_partners.items():
        for key_id, secret in config.inbound_keys.items():
            secrets[key_id] = secret.get_secret_value().encode()
            owners[key_id] = partner_id
    return secrets, owners


def outbound_key(settings: Settings, partner_id: str) -> tuple[str, bytes] | None:
    config = settings.federation_partners.get(partner_id)
    if config is None or config.outbound_key_id is None or config.outbound_secret is None:
        return None
    return config.outbound_key_id, config.outbound_secret.get_secret_value().encode()


def partner_secrets(settings: Settings, partner_id: str) -> dict[str, bytes]:
    """key id -> secret of the keys one partner signs with (its answers are checked against these only)."""
    config = settings.federation_partners.get(partner_id)
    if config is None:
        return {}
    return {key_id: secret.get_secret_value().encode() for key_id, secret in config.inbound_keys.items()}


def answer_headers(request: Request, partner_id: str | None, status: int, body: bytes) -> dict[str, str]:
    """Our signature on the answer to a partner's signed request (none when we hold no key for that partner)."""
    request_signature = request.headers.get(signing.H_SIG)
    key = outbound_key(request.app.state.settings, partner_id) if partner_id else None
    if not request_signature or key is None:
        return {}
    return signing.sign_answer(
        status=status, request_signature=request_signature, body=body, key_id=key[0], secret=key[1]
    )


def endpoint_of(settings: Settings, partner: Partner) -> str | None:
    config = settings.federation_partners.get(partner.id)
    url = (config.endpoint if config and config.endpoint else None) or partner.endpoint
    return url.rstrip("/") if url else None


def _bearer_partner(request: Request, settings: Settings) -> str | None:
    """The partner named by a bearer token, if one is sent; a district token is refused outright."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be a bearer token", code="invalid_token")
    principal = decode_token(token.strip(), settings)
    if principal.role is not Role.PARTNER or not principal.partner_id:
        raise Forbidden(
            f"a {principal.role.value} token cannot act as a partner; federation endpoints are for partners only",
            code="not_a_partner",
        )
    return principal.partner_id


async def _partner(session: AsyncSession, partner_id: str) -> Partner:
    partner = await session.get(Partner, partner_id)
    if partner is None:
        raise Forbidden(f"{partner_id} is not a partner of this district", code="unknown_partner")
    if not partner.active:
        raise Forbidden(f"the agreement with {partner_id} is not active", code="partner_inactive")
    return partner


async def _authenticate(request: Request, session: AsyncSession, *, token_allowed: bool) -> PartnerCaller:
    settings: Settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.federation_limiter
    # Before any verification work: a flood of forged requests from one address stops here.
    limiter.check(f"addr:{request.client.host if request.client else 'unknown'}", what="federation requests")
    token_partner = _bearer_partner(request, settings)
    has_signature = any(request.headers.get(h) for h in (signing.H_SIG, signing.H_KEY))
    body = await request.body()
    if has_signature or not token_allowed or token_partner is None:
        secrets, owners = inbound_secrets(settings)
        try:
            verified = signing.verify(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                body=body,
                headers={k.lower(): v for k, v in request.headers.items()},
                secret_for=secrets,
                max_skew_s=settings.federation_clock_skew_s,
            )
        except signing.SignatureError as exc:
            raise AppError(
                exc.message, code=exc.code, status_code=exc.status, headers={"WWW-Authenticate": signing.SCHEME}
            ) from None
        partner_id = owners[verified.key_id]
        if token_partner is not None and token_partner != partner_id:
            raise Forbidden("the token and the signature name different partners", code="partner_mismatch")
        partner = await _partner(session, partner_id)
        limiter.check(f"partner:{partner.id}", what="federation requests from this partner")
        return PartnerCaller(partner.id, list(partner.roles), "signature", verified.key_id, body)
    partner = await _partner(session, token_partner)
    limiter.check(f"partner:{partner.id}", what="federation requests from this partner")
    return PartnerCaller(partner.id, list(partner.roles), "token", None, body)


async def signed_partner(request: Request, session: SessionDep) -> PartnerCaller:
    """Messages: only a valid signature of a configured, active partner."""
    return await _authenticate(request, session, token_allowed=False)


async def any_partner(request: Request, session: SessionDep) -> PartnerCaller:
    """Reads: a partner signature, or a partner token (role partner)."""
    return await _authenticate(request, session, token_allowed=True)


SignedPartner = Annotated[PartnerCaller, Depends(signed_partner)]
AnyPartner = Annotated[PartnerCaller, Depends(any_partner)]
