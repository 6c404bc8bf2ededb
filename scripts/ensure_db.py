"""Make sure a PostGIS database answers at DATABASE_URL (used by `make run` and `make test`).

1. If a server answers at the URL's host and port: create the database if it is missing and the
   postgis extension in it; if the server lacks PostGIS and runs on this machine, install the
   matching Debian package (postgresql-<major>-postgis-3) first.
2. If nothing answers: install PostgreSQL + PostGIS from the OS packages when the machine has no
   PostgreSQL, then start a local cluster under .data/postgres (as a non-root user when run as
   root) on the URL's port, with trust authentication on the loopback interface only.

Usage: python scripts/ensure_db.py [--no-create-db]
"""

import argparse
import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / ".data" / "postgres"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/jizhou"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
PG_SERVICE_USER = "postgres"


def say(message: str) -> None:
    print(f"[ensure-db] {message}", file=sys.stderr, flush=True)


def parse(url: str) -> dict[str, str | int]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "database": (parts.path or "/").lstrip("/") or "postgres",
    }


async def connect(params: dict[str, str | int], database: str, wait_s: float = 3.0) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=str(params["host"]),
        port=int(params["port"]),
        user=str(params["user"]),
        password=str(params["password"]) or None,
        database=database,
        timeout=wait_s,
    )


async def server_answers(params: dict[str, str | int]) -> bool:
    try:
        conn = await connect(params, "postgres")
    except (TimeoutError, OSError, asyncpg.CannotConnectNowError):
        return False
    except asyncpg.PostgresError:
        return True  # it answered, if only to refuse: not ours to start
    await conn.close()
    return True


def run(cmd: list[str], **kwargs: object) -> None:
    say("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]  # noqa: S603


def apt_install(*packages: str) -> None:
    if shutil.which("apt-get") is None:
        sys.exit(f"[ensure-db] need {' '.join(packages)} but this machine has no apt-get; install them yourself")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([*sudo, "apt-get", "update", "-qq"], env=env)
    run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env)


def pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def ensure_postgis_package(major: int) -> None:
    if glob.glob(f"/usr/share/postgresql/{major}/extension/postgis.control"):
        return
    say(f"PostGIS is missing for PostgreSQL {major}: installing postgresql-{major}-postgis-3")
    apt_install(f"postgresql-{major}-postgis-3")


def start_local_cluster(params: dict[str, str | int]) -> None:
    bindir = pg_bindir()
    if bindir is None:
        say("no PostgreSQL on this machine: installing PostgreSQL and PostGIS from the OS packages")
        apt_install("postgresql", "postgresql-contrib")
        bindir = pg_bindir()
        assert bindir is not None, "PostgreSQL installed but initdb not found"
    major = int(bindir.parts[-2])
    ensure_postgis_package(major)
    as_user: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the cluster belongs to the postgres system user.
        try:
            pwd.getpwnam(PG_SERVICE_USER)
        except KeyError:
            run(["useradd", "--system", "--home-dir", str(DATA_DIR), "--shell", "/usr/sbin/nologin", PG_SERVICE_USER])
        as_user = ["runuser", "-u", PG_SERVICE_USER, "--"]
    DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        DATA_DIR.mkdir(exist_ok=True)
        shutil.chown(DATA_DIR, PG_SERVICE_USER, PG_SERVICE_USER)
        DATA_DIR.chmod(0o700)
    if not (DATA_DIR / "PG_VERSION").exists():
        run(
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(DATA_DIR),
                "-U",
                str(params["user"]),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
    log = DATA_DIR / "server.log"
    run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(DATA_DIR),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {params['port']} -c listen_addresses=127.0.0.1 -k {DATA_DIR}",
            "start",
        ]
    )


async def ensure(url: str, create_db: bool) -> None:
    params = parse(url)
    if not await server_answers(params):
        if str(params["host"]) not in LOCAL_HOSTS:
            sys.exit(f"[ensure-db] nothing answers at {params['host']}:{params['port']} and it is not this machine")
        say(f"nothing answers at {params['host']}:{params['port']}: starting a local cluster in {DATA_DIR}")
        start_local_cluster(params)
        for _ in range(30):
            if await server_answers(params):
                break
            await asyncio.sleep(1)
        else:
            sys.exit("[ensure-db] the local cluster did not come up; see .data/postgres/server.log")
    conn = await connect(params, "postgres")
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        has_postgis = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")
        if not has_postgis:
            if str(params["host"]) not in LOCAL_HOSTS:
                sys.exit("[ensure-db] the server has no PostGIS and is not on this machine: install it there")
            ensure_postgis_package(major)
        database = str(params["database"])
        if create_db and not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            say(f"creating database {database}")
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    if create_db:
        db = await connect(params, str(params["database"]))
        try:
            await db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            version = await db.fetchval("SELECT postgis_lib_version()")
        finally:
            await db.close()
        say(f"PostGIS {version} ready in {params['database']} at {params['host']}:{params['port']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-create-db", action="store_true", help="only make sure the server answers")
    args = parser.parse_args()
    asyncio.run(ensure(os.environ.get("DATABASE_URL") or DEFAULT_URL, create_db=not args.no_create_db))


if __name__ == "__main__":
    main()
