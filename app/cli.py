"""python -m app: serve | db upgrade | db downgrade | seed | import | token | user | federation deliver."""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.users.models import Role, User

T = TypeVar("T")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.main:create_served_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
        # Compressing each event once per socket cost most of the fan-out CPU (bench, section 4).
        ws_per_message_deflate=False,
    )
    return 0


def _alembic(direction: str, revision: str) -> int:
    from alembic.config import Config

    from alembic import command

    config = Config(str(Path(__file__).resolve().parents[1] / "alembic.ini"))
    if direction == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)
    return 0


async def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from app.db import create_engine, create_sessionmaker

    engine = create_engine(get_settings())
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _seed(args: argparse.Namespace) -> int:
    from app import seeding

    report = asyncio.run(_in_transaction(lambda s: seeding.seed(s, Path(args.dir) if args.dir else seeding.SEEDS_DIR)))
    print(json.dumps({"changed": report.changed, "counts": report.counts}, ensure_ascii=False))
    return 0


def _import(args: argparse.Namespace) -> int:
    from app import seeding

    kind = seeding.ResourceKind(args.kind)
    report = asyncio.run(_in_transaction(lambda s: seeding.import_file(s, kind, Path(args.file))))
    print(json.dumps({"changed": report.changed, "counts": report.counts}, ensure_ascii=False))
    return 0


def _token(args: argparse.Namespace) -> int:
    from app.auth import mint_token

    role = Role(args.role)
    if role is Role.TOWNSHIP and not args.township:
        sys.exit("a township token needs --township CODE")
    if role is Role.RESPONDER and args.team is None:
        sys.exit("a responder token needs --team ID")
    if role is Role.PARTNER and not args.partner:
        sys.exit("a partner token needs --partner ID")
    print(
        mint_token(
            settings=get_settings(),
            subject=args.subject or f"cli-{role.value}",
            role=role,
            township=args.township,
            team_id=args.team,
            partner_id=args.partner,
            ttl_s=args.ttl,
        )
    )
    return 0


def _user(args: argparse.Namespace) -> int:
    from app.users import service as user_service

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else args.password
    if not password:
        sys.exit("give --password or --password-stdin")

    async def work(session: AsyncSession) -> User:
        return await user_service.create_user(
            session=session,
            username=args.username,
            password=password,
            role=Role(args.role),
            township_code=args.township,
            team_id=args.team,
            partner_id=args.partner,
        )

    user = asyncio.run(_in_transaction(work))
    print(json.dumps({"id": user.id, "username": user.username, "role": user.role.value}))
    return 0


def _federation(args: argparse.Namespace) -> int:
    from app.federation import cli as federation_cli

    return federation_cli.deliver()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="schema migrations (Alembic)")
    db.add_argument("direction", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=lambda a: _alembic(a.direction, a.revision or ("head" if a.direction == "upgrade" else "-1")))

    seed = sub.add_parser("seed", help="load the Jizhou seeds (idempotent)")
    seed.add_argument("--dir", help="seed folder (default: seeds/)")
    seed.set_defaults(func=_seed)

    imp = sub.add_parser("import", help="load your own GeoJSON/CSV of one resource kind")
    imp.add_argument("kind", choices=["teams", "shelters", "depots", "helipads"])
    imp.add_argument("file")
    imp.set_defaults(func=_import)

    token = sub.add_parser("token", help="print a bearer token")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--township")
    token.add_argument("--team", type=int)
    token.add_argument("--partner")
    token.add_argument("--subject")
    token.add_argument("--ttl", type=int, help="seconds (default from settings)")
    token.set_defaults(func=_token)

    user = sub.add_parser("user", help="create a user who can log in at POST /api/v1/auth/token")
    user.add_argument("username")
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    user.add_argument("--password")
    user.add_argument("--password-stdin", action="store_true")
    user.add_argument("--township")
    user.add_argument("--team", type=int)
    user.add_argument("--partner")
    user.set_defaults(func=_user)

    # Federation (issue 6): one outbox delivery pass.
    federation = sub.add_parser("federation", help="federation with partner districts")
    federation.add_argument("action", choices=["deliver"], help="deliver: one outbox delivery pass")
    federation.set_defaults(func=_federation)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:
        from app.seeding import SeedError

        if isinstance(exc, SeedError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
