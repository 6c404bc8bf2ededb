"""A token bucket per key, in process memory.

Enough to stop password guessing and a partner flooding us from one process; behind several
processes each keeps its own buckets (the limit is then per process), which is documented.
"""

import time
from dataclasses import dataclass, field

from app.errors import AppError


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """`rate` requests per second on average, bursts up to `burst`."""

    rate: float
    burst: int
    max_keys: int = 100_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def check(self, key: str, *, what: str) -> None:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            retry = max(1, round((1 - bucket.tokens) / self.rate))
            raise RateLimited(
                f"too many {what}; retry in {retry} s",
                headers={"Retry-After": str(retry)},
                details={"retry_after_s": retry},
            )
        bucket.tokens -= 1

    def _evict(self, now: float) -> None:
        # Drop buckets that have refilled completely: they carry no state worth keeping.
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full or list(self._buckets)[: self.max_keys // 10]:
            del self._buckets[key]
