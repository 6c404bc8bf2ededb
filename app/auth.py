"""Who is calling: bearer JWTs (HS256) carrying a role and its scope (township, team or partner).

Roles: command (everything in the district), township (reads all; writes its own township),
responder (bound to one team), viewer (reads), partner (federation endpoints only).
"""

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.errors import Forbidden, Unauthorized
from app.users.models import Role

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    role: Role
    township: str | None = None
    team_id: int | None = None
    partner_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller."""
        return f"{self.role.value}:{self.subject}"

    def can_write_township(self, township_code: str | None) -> bool:
        if self.role is Role.COMMAND:
            return True
        return self.role is Role.TOWNSHIP and township_code is not None and township_code == self.township


def mint_token(
    *,
    settings: Settings,
    subject: str,
    role: Role,
    township: str | None = None,
    team_id: int | None = None,
    partner_id: str | None = None,
    ttl_s: int | None = None,
) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl_s if ttl_s is not None else settings.jwt_ttl_s),
        "jti": uuid.uuid4().hex,
    }
    if township is not None:
        claims["township"] = township
    if team_id is not None:
        claims["team"] = team_id
    if partner_id is not None:
        claims["partner"] = partner_id
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


# Tokens already verified, with their principal and expiry: a console sends the same token with every request
# for hours, and checking its HS256 signature and claims again each time (PyJWT) was ~7% of the service's CPU per
# recommendation (bench section 1). Keyed by the secret and issuer it was checked against too, so a changed secret
# verifies anew. Only successes are kept; a kept token still expires on time. Nothing revokes a token before its
# expiry (there is no deny list), so a kept answer is exactly what verifying again would give.
_verified: OrderedDict[tuple[str, str, str], tuple[Principal, float]] = OrderedDict()
VERIFIED_TOKENS_KEPT = 4096


def decode_token(token: str, settings: Settings) -> Principal:
    key = (token, settings.jwt_secret.get_secret_value(), settings.jwt_issuer)
    kept = _verified.get(key)
    if kept is not None:
        principal, expires_at = kept
        if time.time() < expires_at:
            return principal
        del _verified[key]
        raise _expired()
    principal, expires_at = _verify(token, settings)
    _verified[key] = (principal, expires_at)
    if len(_verified) > VERIFIED_TOKENS_KEPT:
        _verified.popitem(last=False)  # the oldest verified first
    return principal


def _expired() -> Unauthorized:
    return Unauthorized("the token has expired", code="token_expired")


def _verify(token: str, settings: Settings) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise _expired() from None
    except jwt.PyJWTError:
        raise Unauthorized("the token is not valid", code="invalid_token") from None
    try:
        role = Role(claims["role"])
    except (KeyError, ValueError):
        raise Unauthorized("the token names no known role", code="invalid_token") from None
    team = claims.get("team")
    principal = Principal(
        subject=str(claims["sub"]),
        role=role,
        township=claims.get("township"),
        team_id=int(team) if isinstance(team, int | str) and str(team).isdigit() else None,
        partner_id=claims.get("partner"),
    )
    if role is Role.TOWNSHIP and not principal.township:
        raise Unauthorized("a township token must name its township", code="invalid_token")
    if role is Role.RESPONDER and principal.team_id is None:
        raise Unauthorized("a responder token must name its team", code="invalid_token")
    if role is Role.PARTNER and not principal.partner_id:
        raise Unauthorized("a partner token must name its partner", code="invalid_token")
    return principal, float(claims["exp"])


_bearer = HTTPBearer(auto_error=False, description="JWT from `python -m app token` or POST /api/v1/auth/token")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Any district caller; partners are kept to the federation endpoints."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    principal = decode_token(credentials.credentials, request.app.state.settings)
    if principal.role is Role.PARTNER:
        raise Forbidden("partner tokens are valid only on the federation endpoints", code="partner_not_allowed")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Any:
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"role {principal.role.value} may not do this",
                code="role_not_allowed",
                details={"allowed_roles": [r.value for r in roles]},
            )
        return principal

    return Depends(dependency)


Writer = Annotated[Principal, require_roles(Role.COMMAND, Role.TOWNSHIP)]
Commander = Annotated[Principal, require_roles(Role.COMMAND)]
