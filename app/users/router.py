from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app.auth import mint_token
from app.db import SessionDep
from app.errors import Unauthorized
from app.ratelimit import RateLimiter
from app.users import service

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int


@router.post(
    "/token",
    response_model=TokenResponse,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "too many attempts"}},
)
async def login(
    request: Request, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenResponse:
    """Exchange a username and password (OAuth2 password form) for a bearer token."""
    client = request.client.host if request.client else "unknown"
    limiter: RateLimiter = request.app.state.login_limiter
    # Per account and per address: guessing one password, or many accounts from one place, both stop.
    limiter.check(f"user:{form.username}", what="login attempts for this account")
    limiter.check(f"addr:{client}", what="login attempts from this address")
    user = await service.authenticate(session=session, username=form.username, password=form.password)
    if user is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    settings = request.app.state.settings
    token = mint_token(
        settings=settings,
        subject=user.username,
        role=user.role,
        township=user.township_code,
        team_id=user.team_id,
        partner_id=user.partner_id,
    )
    return TokenResponse(access_token=token, expires_in=settings.jwt_ttl_s)
