"""Errors of the data sources, split into recoverable (retry later) and fatal (retrying cannot help).

Every error names what failed: the endpoint and season (the partition), and the URL where there is one.
"""

from __future__ import annotations


class SourceError(Exception):
    """Base of every data-source error."""

    recoverable = False

    def __init__(self, message: str, *, partition: str | None = None, url: str | None = None):
        self.message = message
        self.partition = partition
        self.url = url
        where = ", ".join(part for part in (partition, url) if part)
        super().__init__(f"{message} [{where}]" if where else message)


class RecoverableSourceError(SourceError):
    """A fault that may pass: rate limiting, server errors, timeouts, dropped connections."""

    recoverable = True
    retry_after: float | None = None  # seconds the server asked us to wait, when it said


class RateLimitedError(RecoverableSourceError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(RecoverableSourceError):
    """HTTP 5xx (a 503 may carry Retry-After)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class TransportError(RecoverableSourceError):
    """Connect or read timeout, connection refused or reset."""


class RetryBudgetSpent(SourceError):
    """A recoverable fault that outlasted the partition's retry budget (`max_retries` + 1 requests):
    not retried again this run; the next run tries afresh."""


class FatalSourceError(SourceError):
    """Retrying cannot help: a person has to act."""


class AuthError(FatalSourceError):
    """401/403: the API key is missing, invalid or lacks access."""


class QuotaExceededError(FatalSourceError):
    """The monthly call quota is spent: retrying only burns goodwill until the month turns."""


class RequestError(FatalSourceError):
    """Any other 4xx: the request itself is wrong."""


class PayloadError(FatalSourceError):
    """The response is not JSON, or not the shape the endpoint promises."""


def is_recoverable(error: BaseException) -> bool:
    """True for errors worth retrying (the task retry condition uses this): the one mapping of
    faults to retry or not. Recoverable: rate limits (429 without the quota message), 5xx,
    timeouts, dropped or refused connections. Not: 401/403, the spent quota, other 4xx, malformed
    or wrongly shaped answers, and any fault once its partition's retry budget is spent."""
    return isinstance(error, RecoverableSourceError)
