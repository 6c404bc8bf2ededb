"""What a section is handed: the report, the databases and the run's sizes (full or --quick)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core import Report
from bench.infra import Databases


@dataclass(frozen=True)
class Sizes:
    """How long and how much: the default run stays under 10 minutes on 2 cores, --quick near 1-2."""

    overhead_pairs: int = 2000
    # Loops of single requests also stop at a time budget, so a slow (or busy) machine still finishes.
    overhead_max_s: float = 60.0
    throughput_s: float = 15.0
    ingest_s: float = 10.0
    scale_samples: int = 400
    scale_stage_max_s: float = 20.0
    scale_teams: tuple[int, int] = (5_000, 100_000)
    fanout_clients: int = 1000
    fanout_events: int = 10
    contention_s: float = 20.0
    writes_round_s: float = 8.0
    writes_rounds: int = 2
    writes_live_clients: int = 500

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            overhead_pairs=200,
            overhead_max_s=8.0,
            throughput_s=3.0,
            ingest_s=3.0,
            scale_samples=50,
            scale_stage_max_s=4.0,
            scale_teams=(1_000, 20_000),
            fanout_clients=100,
            fanout_events=3,
            contention_s=4.0,
            writes_round_s=2.5,
            writes_rounds=1,
            writes_live_clients=50,
        )


@dataclass
class Bench:
    report: Report
    databases: Databases
    sizes: Sizes
    # True when PostgreSQL runs on this machine, so its backends' CPU can be read from /proc.
    local_db: bool
