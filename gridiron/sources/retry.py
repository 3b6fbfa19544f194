"""Retry timing: jittered exponential backoff and the HTTP `Retry-After` header. Pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def backoff_delay(
    retry_number: int,
    base_seconds: float,
    *,
    cap_seconds: float = 300.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry `retry_number` (0 = first retry): base * 2**n, capped, then jittered.

    Jitter spreads the delay uniformly over [1 - jitter, 1 + jitter] times the nominal value so that
    clients that failed together do not retry together.
    """
    if retry_number < 0:
        raise ValueError("retry_number must be >= 0")
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")
    nominal = min(cap_seconds, base_seconds * (2**retry_number))
    spread = (rng or random).uniform(1 - jitter, 1 + jitter)
    return nominal * spread


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())
