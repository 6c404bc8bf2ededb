"""What every section shares: the run's identity (commit, cores, date, PostgreSQL), statistics,
CPU accounting and the report (one printed line per figure, and the JSON written at the end)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"

Status = Literal["MET", "MISSED", "SKIPPED", "INFO"]


# ---- the run's identity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    commit: str
    dirty: bool
    cpus: int
    started_at: datetime
    pg_version: str = "?"
    postgis_version: str = "?"
    python: str = platform.python_version()
    machine: str = f"{platform.system()} {platform.machine()}"

    @property
    def stamp(self) -> str:
        """The suffix of every figure line: which code, on what, when."""
        commit = self.commit + ("+dirty" if self.dirty else "")
        return f"[{commit} · {self.cpus} cores · {self.started_at:%Y-%m-%dT%H:%MZ} · PG {self.pg_version}]"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        return data


def git_commit() -> tuple[str, bool]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10)  # noqa: S603, S607
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # Only tracked files count: bench/results/ is ignored and .venv is not ours to judge.
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return commit, dirty


def new_meta() -> Meta:
    commit, dirty = git_commit()
    return Meta(commit=commit, dirty=dirty, cpus=os.cpu_count() or 1, started_at=datetime.now(UTC))


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (1,000+ sockets per process need it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return cls(
            n=len(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            max=max(values),
            mean=sum(values) / len(values),
        )

    def ms(self) -> dict[str, float]:
        """The same figures in milliseconds (samples are kept in seconds), rounded for the JSON."""
        return {k: round(v * 1000, 3) for k, v in asdict(self).items() if k != "n"} | {"n": self.n}


# ---- CPU: who used the two cores ------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float | None:
    """user + system seconds of a process (all its threads), from /proc; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuSample:
    wall: float
    own: float
    processes: dict[int, float]
    machine_busy: float
    machine_total: float


def cpu_sample(pids: Iterable[int] = ()) -> CpuSample:
    busy, total = machine_cpu_s()
    processes = {pid: cpu for pid in pids if (cpu := process_cpu_s(pid)) is not None}
    return CpuSample(time.monotonic(), time.process_time(), processes, busy, total)


def cores_used(
    before: CpuSample, after: CpuSample, groups: Mapping[str, Iterable[int]], *, extra_own_s: float = 0.0
) -> dict[str, float]:
    """Cores used per group over the interval (1.0 = one core busy all along).

    `client` is this process (plus `extra_own_s` reported by client subprocesses); `machine` is every
    process on the box, so `other` = machine - the rest shows load that is not ours (other users of the
    shared PostgreSQL or machine). A process that appeared mid-interval counts from zero.
    """
    wall = max(after.wall - before.wall, 1e-9)
    used: dict[str, float] = {"client": (after.own - before.own + extra_own_s) / wall}
    for name, pids in groups.items():
        seconds = 0.0
        for pid in set(pids):
            if pid in after.processes:
                seconds += after.processes[pid] - before.processes.get(pid, 0.0)
        used[name] = seconds / wall
    machine_total = max(after.machine_total - before.machine_total, 1e-9)
    cores = os.cpu_count() or 1
    used["machine"] = (after.machine_busy - before.machine_busy) / machine_total * cores
    used["other"] = max(0.0, used["machine"] - sum(v for k, v in used.items() if k != "machine"))
    return {k: round(v, 2) for k, v in used.items()}


def cores_text(used: dict[str, float]) -> str:
    return " · ".join(f"{k} {v:.2f}" for k, v in used.items())


# ---- the report -----------------------------------------------------------------------------------


@dataclass
class Figure:
    section: str
    key: str
    label: str
    value: float | None
    unit: str
    target: str
    status: Status
    details: dict[str, Any] = field(default_factory=dict)
    # Shown instead of the number when the figure is a fact rather than a quantity ("yes", "0 of 412").
    text: str = ""


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "×":
        return f"{value:.2f}×"
    if unit in ("/s", "req/s", "positions/s", "bookings/s", "writes/s"):
        return f"{value:,.0f} {unit}"
    if float(value).is_integer():
        return f"{int(value):,} {unit}".rstrip()
    return f"{value:,.2f} {unit}".rstrip()


class Report:
    def __init__(self, meta: Meta) -> None:
        self.meta = meta
        self.figures: list[Figure] = []
        self.details: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        # Cores others kept busy just before the run (the machine and its PostgreSQL are shared).
        self.background_cores: float | None = None

    @staticmethod
    def say(text: str = "") -> None:
        print(text, flush=True)

    def heading(self, title: str) -> None:
        self.say()
        self.say(f"== {title} " + "=" * max(3, 96 - len(title)))

    def note(self, text: str) -> None:
        self.say(f"   {text}")

    def _add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        target = f"target {figure.target}" if figure.target else ""
        value = figure.text or _fmt(figure.value, figure.unit)
        self.say(f"   {figure.label:<44} {value:>16}   {target:<22} {figure.status:<8} {self.meta.stamp}")
        return figure

    def info(self, section: str, key: str, label: str, value: float | None, unit: str, **details: Any) -> Figure:
        return self._add(Figure(section, key, label, value, unit, "", "INFO", details))

    def check(
        self,
        section: str,
        key: str,
        label: str,
        value: float | None,
        unit: str,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
        **details: Any,
    ) -> Figure:
        """A figure with a target: MET or MISSED (a missing value is MISSED, never quietly passed)."""
        if at_most is not None:
            target = f"≤ {_fmt(at_most, unit)}"
            met = value is not None and not math.isnan(value) and value <= at_most
        elif at_least is not None:
            target = f"≥ {_fmt(at_least, unit)}"
            met = value is not None and not math.isnan(value) and value >= at_least
        else:
            raise ValueError("a checked figure needs at_most or at_least")
        return self._add(Figure(section, key, label, value, unit, target, "MET" if met else "MISSED", details))

    def verdict(
        self,
        section: str,
        key: str,
        label: str,
        ok: bool,
        text: str,
        target: str,
        value: float | None = None,
        **details: Any,
    ) -> Figure:
        """A yes/no figure (an index is used, no team is booked twice): MET when ok."""
        status: Status = "MET" if ok else "MISSED"
        return self._add(Figure(section, key, label, value, "", target, status, details, text=text))

    def skipped(self, section: str, key: str, label: str, reason: str) -> Figure:
        figure = self._add(Figure(section, key, label, None, "", "", "SKIPPED", {"reason": reason}))
        self.note(f"SKIPPED: {reason}")
        return figure

    def detail(self, section: str, **values: Any) -> None:
        self.details.setdefault(section, {}).update(values)

    def error(self, section: str, text: str) -> None:
        self.errors[section] = text
        self.say(f"   ERROR in {section}: {text}")

    def as_json(self, args: dict[str, Any], finished_at: datetime) -> dict[str, Any]:
        return {
            "meta": self.meta.as_json()
            | {"finished_at": finished_at.isoformat(), "background_cores_before_run": self.background_cores},
            "args": args,
            "figures": [asdict(f) for f in self.figures],
            "details": self.details,
            "errors": self.errors,
        }

    def write_json(self, args: dict[str, Any]) -> Path:
        finished = datetime.now(UTC)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        suffix = "-quick" if args.get("quick") else ""
        path = RESULTS_DIR / f"{self.meta.started_at:%Y-%m-%dT%H%M%SZ}-{self.meta.commit}{suffix}.json"
        path.write_text(json.dumps(self.as_json(args, finished), indent=2, ensure_ascii=False, default=str) + "\n")
        return path

    def summary(self) -> None:
        self.heading("summary")
        for f in self.figures:
            if f.status != "INFO":
                value = f.text or _fmt(f.value, f.unit)
                self.say(f"   {f.status:<8} {f.section:<12} {f.label:<44} {value:>16}   {f.target}")
        for section, text in self.errors.items():
            self.say(f"   ERROR    {section:<12} {text}")


def python() -> str:
    return sys.executable
