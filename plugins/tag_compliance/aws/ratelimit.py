"""Process-wide client-side rate limiting per (account, region, service).

AWS throttles per account, region and API family, whatever number of clients we open;
botocore's ``adaptive`` mode only limits one client. A token bucket shared by every
client of the process for the same key keeps the whole worker under the quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """Sustained requests per second and the burst allowed on top."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"rate limit needs rate > 0 and burst >= 1, got {self}")


# Conservative defaults below the published quotas. EC2 describe calls: 20/s refill, 100 burst.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "ec2": RateLimit(rate=20, burst=100),
    "rds": RateLimit(rate=10, burst=20),
    "s3": RateLimit(rate=50, burst=100),
    "lambda": RateLimit(rate=10, burst=20),
    "ecs": RateLimit(rate=20, burst=50),
    "resourcegroupstaggingapi": RateLimit(rate=5, burst=10),
    "sts": RateLimit(rate=10, burst=20),
    "ce": RateLimit(rate=1, burst=5),
    # Account Management's quota: ListRegions 5 per second (burst 5) per caller account, all of
    # a run's region discovery in one bucket.
    "account": RateLimit(rate=5, burst=5),
}
FALLBACK_RATE_LIMIT = RateLimit(rate=10, burst=20)


class TokenBucket:
    """Thread-safe token bucket; ``acquire`` blocks until a token is free."""

    def __init__(
        self,
        limit: RateLimit,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(limit.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, returning how long the caller waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.limit.burst, self._tokens + (now - self._updated) * self.limit.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                delay = (1 - self._tokens) / self.limit.rate
            self._sleep(delay)
            waited += delay


class RateLimiterRegistry:
    """One bucket per (account, region, service), shared by the whole process."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(
        self, account_id: str, region: str, service: str, overrides: Mapping[str, RateLimit] | None = None
    ) -> TokenBucket:
        key = (account_id, region, service)
        with self._lock:
            if key not in self._buckets:
                limits = {**DEFAULT_RATE_LIMITS, **(overrides or {})}
                self._buckets[key] = TokenBucket(limits.get(service, FALLBACK_RATE_LIMIT))
            elif overrides and service in overrides:
                # a later task of the same worker process may be configured differently
                self._buckets[key].limit = overrides[service]
            return self._buckets[key]


RATE_LIMITERS = RateLimiterRegistry()
