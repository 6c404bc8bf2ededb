"""python -m bench [--quick] [--only SECTION ...]: measure the dispatch path and print the figures.

Makes its own databases on the server of DATABASE_URL, starts the real service as uvicorn subprocesses,
prints every figure with its target and MET / MISSED / SKIPPED, writes bench/results/<date>-<commit>.json,
and drops what it made, also on error or Ctrl-C. Timings are measured and printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported lazily below: client processes spawned by the bench re-import this file and need none of it.
    from bench.context import Bench, Sizes
    from bench.core import Report
    from bench.infra import Databases

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/jizhou"

# name: (number, module); a section's module is imported when it runs.
SECTIONS: dict[str, tuple[str, str]] = {
    "overhead": ("1", "bench.overhead"),
    "throughput": ("2", "bench.throughput"),
    "scale": ("3", "bench.scale"),
    "fanout": ("4", "bench.fanout"),
    "contention": ("5", "bench.contention"),
    "writes": ("6", "bench.writes"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run (smaller, shorter)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help="run only this section (name or number; repeatable or comma-separated): "
        + ", ".join(f"{n}={s}" for s, (n, _) in SECTIONS.items()),
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    args = parser.parse_args(argv)
    chosen: list[str] = []
    for item in args.only or []:
        for part in item.split(","):
            key = next((s for s, (n, _) in SECTIONS.items() if part.strip() in (s, n)), None)
            if key is None:
                parser.error(f"unknown section {part!r}; one of {', '.join(SECTIONS)} or 1-6")
            chosen.append(key)
    args.sections = [s for s in SECTIONS if s in chosen] if chosen else list(SECTIONS)
    return args


async def run_sections(bench: Bench, sections: list[str]) -> None:
    report = bench.report
    for name in sections:
        number, module = SECTIONS[name]
        started = time.monotonic()
        try:
            section: Callable[[Bench], Awaitable[None]] = importlib.import_module(module).run
            await section(bench)
        except Exception as exc:
            # One broken section does not hide the others' figures; the error is printed and in the JSON.
            report.error(name, f"{type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stdout)
        report.note(f"({number}. {name} took {time.monotonic() - started:.0f} s)")


async def main_async(args: argparse.Namespace, report: Report, databases: Databases, sizes: Sizes) -> None:
    from bench.context import Bench
    from bench.core import cpu_sample

    # Others share this machine and its PostgreSQL: how busy it was before we started is part of the figures.
    before = cpu_sample()
    await asyncio.sleep(2)
    idle_load = (after := cpu_sample()).machine_busy - before.machine_busy
    cores = idle_load / max(after.machine_total - before.machine_total, 1e-9) * report.meta.cpus
    report.background_cores = round(cores, 2)
    report.say(f"background load before the run: {cores:.2f} of {report.meta.cpus} cores busy (not ours)")
    version, local = await databases.server_versions()
    report.meta = replace(report.meta, pg_version=version)
    report.say(
        f"setting up jizhou_bench_{databases.run_id} (migrate + seed) on {databases.server_url.rsplit('@', 1)[-1]}"
    )
    started = time.monotonic()
    await databases.ensure_template()
    report.meta = replace(report.meta, postgis_version=await databases.postgis_version())
    report.say(f"ready in {time.monotonic() - started:.0f} s; PostGIS {report.meta.postgis_version}")
    await run_sections(Bench(report=report, databases=databases, sizes=sizes, local_db=local), args.sections)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM behaves like Ctrl-C: the finally blocks stop the servers and drop the databases.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    from bench.context import Sizes
    from bench.core import Report, new_meta, raise_open_files_limit
    from bench.infra import LOG_DIR, Databases, stop_all_processes

    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    raise_open_files_limit()
    sizes = Sizes.quick() if args.quick else Sizes()
    meta = new_meta()
    report = Report(meta)
    databases = Databases(server_url=args.database_url)
    report.say(
        f"jizhou bench — commit {meta.commit}{'+dirty' if meta.dirty else ''}, {meta.cpus} cores,"
        f" {meta.started_at:%Y-%m-%d %H:%M} UTC, {'quick' if args.quick else 'full'} run,"
        f" sections: {', '.join(args.sections)}"
    )
    started = time.monotonic()
    interrupted = False
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main_async(args, report, databases, sizes))
    except KeyboardInterrupt:
        interrupted = True
        report.say("\ninterrupted: stopping servers and dropping the bench databases")
    finally:
        stop_all_processes()
        try:
            dropped = asyncio.run(databases.drop_all())
            report.say(f"dropped {len(dropped)} bench database(s)")
        except Exception as exc:
            report.say(f"could not drop the bench databases (jizhou_bench_{databases.run_id}*): {exc}")
    report.summary()
    report.say(f"total {time.monotonic() - started:.0f} s; server logs in {LOG_DIR}")
    if not args.no_json:
        json_args: dict[str, Any] = {"quick": args.quick, "sections": args.sections, "sizes": asdict(sizes)}
        report.say(f"results: {report.write_json(json_args)}")
    return 130 if interrupted else (1 if report.errors else 0)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvloop (installed with uvicorn[standard]) keeps the client's own CPU per request down.
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
