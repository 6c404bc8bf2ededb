"""Users who log in with a password and get a bearer token."""

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict
from app.users.models import Role, User

_hasher = PasswordHash.recommended()
# Verifying against this keeps a login for an unknown user as slow as one for a known user.
_DUMMY_HASH = _hasher.hash("timing-equaliser")


async def create_user(
    *,
    session: AsyncSession,
    username: str,
    password: str,
    role: Role,
    township_code: str | None = None,
    team_id: int | None = None,
    partner_id: str | None = None,
) -> User:
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"the username {username} is taken", code="username_taken")
    user = User(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        township_code=township_code,
        team_id=team_id,
        partner_id=partner_id,
    )
    session.add(user)
    await session.flush()
    return user


async def authenticate(*, session: AsyncSession, username: str, password: str) -> User | None:
    user = await session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None:
        _hasher.verify(password, _DUMMY_HASH)
        return None
    return user if _hasher.verify(password, user.password_hash) else None
