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
    """A 429: recoverable, with the seconds the server asked to wait (None: it did not say)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(RecoverableSourceError):
    """HTTP 5xx (a 503 may carry Retry-After)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class TransportError(RecoverableSourceError):
    """Connect or read timeout, connection refused or reset, a body cut off before its end."""


class TruncatedPayload(RecoverableSourceError):
    """A 200 whose body is not valid JSON: most often cut off on the way, so it is retried; a body
    that stays malformed through the retry budget fails its partition."""


class RetryBudgetSpent(SourceError):
    """A recoverable fault that outlasted the partition's retry budget (`max_retries` + 1 requests):
    not retried again this run; the next run tries afresh."""


class FatalSourceError(SourceError):
    """Retrying cannot help: a person has to act."""


class SourceUnavailable(FatalSourceError):
    """The API does not answer at all (refused connections, timeouts or 5xx on every route, its
    unmetered `/info` included): every other call would fail alike, so the run stops now."""


class QuotaReserveReached(SourceError):
    """The calls left this month are down to `source.min_calls_reserve`: the partition is not
    fetched this run (what was fetched before stays; the next run catches up)."""


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
    faults to retry or not.

    | fault | class | retried |
    |---|---|---|
    | 429 rate limit (honouring Retry-After), 5xx, timeouts, refused/reset/cut-off connections | RateLimitedError, ServerError, TransportError | yes, within the budget |
    | a 200 body that is not valid JSON (usually cut off) | TruncatedPayload | yes, within the budget |
    | the budget (max_retries + 1 requests) spent | RetryBudgetSpent | no: the partition fails |
    | the API down altogether (its `/info` fails too) | SourceUnavailable | no: the run stops |
    | calls left down to `min_calls_reserve` | QuotaReserveReached | no: the partition waits for the next run |
    | 401/403, monthly quota spent, other 4xx, a wrongly shaped answer | AuthError, QuotaExceededError, RequestError, PayloadError | no |
    """
    return isinstance(error, RecoverableSourceError)


def run_stopped(error: SourceError, not_fetched: int, planned: int) -> SourceError:
    """The one-line error that stops a run when the source refuses every call: what happened, of
    which kind, how many partitions it left unfetched, and what to do."""
    if isinstance(error, SourceUnavailable):
        kind, advice = "recoverable, but not within this run", "check CFBD_BASE_URL and the network, then run again"
    elif isinstance(error, AuthError):
        kind, advice = "fatal", "set a valid CFBD_API_KEY (or unset it to run on the snapshot)"
    else:
        kind, advice = "fatal", "run again once the monthly quota is back"
    message = (f"{error.message.removeprefix('not calling: ')} ({kind}); {not_fetched} of {planned} partitions not fetched and the "
               f"warehouse is unchanged: {advice}")
    return type(error)(message, url=error.url)
