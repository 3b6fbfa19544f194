"""Data sources: the live CFBD API and the bundled real-data snapshot, behind one interface."""

from __future__ import annotations

import logging
from pathlib import Path

from gridiron.config import PipelineConfig
from gridiron.sources.api import ApiSource, CFBDClient
from gridiron.sources.base import (
    ENDPOINTS,
    REFERENCE,
    SEASONAL,
    FetchResult,
    Partition,
    Source,
    checksum,
    normalise,
)
from gridiron.sources.errors import (
    AuthError,
    FatalSourceError,
    PayloadError,
    QuotaExceededError,
    QuotaReserveReached,
    RateLimitedError,
    RecoverableSourceError,
    RetryBudgetSpent,
    SourceError,
    SourceUnavailable,
    TruncatedPayload,
    is_recoverable,
)
from gridiron.sources.snapshot import SnapshotSource, bundled_snapshot_dir

log = logging.getLogger(__name__)

__all__ = [
    "ENDPOINTS", "REFERENCE", "SEASONAL", "ApiSource", "AuthError", "CFBDClient",
    "FatalSourceError", "FetchResult", "Partition", "PayloadError", "QuotaExceededError",
    "QuotaReserveReached", "RateLimitedError", "RecoverableSourceError", "RetryBudgetSpent",
    "SourceUnavailable", "TruncatedPayload", "SnapshotSource", "Source", "SourceError",
    "bundled_snapshot_dir", "checksum", "is_recoverable", "make_source", "normalise",
]


def make_client(config: PipelineConfig) -> CFBDClient:
    """A CFBD client with the config's base URL, key, timeouts, pacing, concurrency and retry budget."""
    settings = config.source
    return CFBDClient(
        config.api_key.get_secret_value() if config.api_key else "",
        settings.base_url,
        timeout_seconds=settings.timeout_seconds,
        max_in_flight=settings.max_concurrent_requests,
        min_request_interval=settings.min_request_interval,
        max_attempts=settings.http_max_attempts,
        backoff_seconds=settings.http_backoff_seconds,
        max_retry_after_seconds=settings.max_retry_after_seconds,
        max_requests_per_partition=config.max_retries + 1,
        min_calls_left=settings.min_calls_reserve,
    )


def make_source(config: PipelineConfig) -> Source:
    """The live API when a key is set (or `source.kind: api`), else the snapshot; logs which."""
    if config.uses_api:
        log.info("source: CFBD API at %s", config.source.base_url)
        return ApiSource(make_client(config))
    root = config.source.snapshot_dir or bundled_snapshot_dir()
    which = "the bundled snapshot" if config.source.snapshot_dir is None else "the snapshot"
    reason = "no CFBD_API_KEY set" if config.api_key is None else "source.kind is 'snapshot'"
    source = SnapshotSource(root, f"{which} at {Path(root).resolve()} ({reason}: no API calls are made)")
    log.info("source: %s", source.description)
    return source
