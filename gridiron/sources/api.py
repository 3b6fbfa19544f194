"""A thin httpx client for the College Football Data API v2, and the `Source` built on it.

One `httpx.Client` per `CFBDClient` (base URL, Bearer auth, timeouts), safe to share between threads.
The client bounds requests in flight, spaces request starts (no spacing by default; a 429 widens it
for every thread and later answers narrow it again, see `pacing.Pacer`), retries recoverable faults itself with
jittered exponential backoff (honouring `Retry-After`, which Prefect's retry delays do not read), and
records the `X-CallLimit-Remaining` header of every response.

The retry budget: one partition costs at most `max_requests_per_partition` requests (the config's
`max_retries` + 1), counted here, where every request is sent, across the client's own quick
attempts and the fetch task's backed-off retries. A recoverable fault once the budget is spent is
raised as `RetryBudgetSpent`, which no layer retries.

Failing fast: before a call hands a recoverable fault back for the task's slower retry, the client
asks the unmetered `/info` whether the API answers at all. When it does not (refused, timed out,
5xx), the circuit opens: that call and every later one raise `SourceUnavailable` at once, and the
run stops within seconds instead of sleeping through every partition's retries.

Quota: `min_calls_left` (the config's `source.min_calls_reserve`) is kept back: once the calls
left, less those in flight, reach it, a call raises `QuotaReserveReached` without a request.
This errs on the safe side: an answer's `X-CallLimit-Remaining` may already count a request still
in flight, which is then counted twice, so with concurrent requests a run may stop one call short
of the reserve, never go into it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any

import httpx

from gridiron import __version__, clock
from gridiron.sources.base import FetchResult, Partition, check_shape
from gridiron.sources.errors import (
    AuthError,
    QuotaExceededError,
    QuotaReserveReached,
    RateLimitedError,
    RecoverableSourceError,
    RequestError,
    RetryBudgetSpent,
    ServerError,
    SourceError,
    SourceUnavailable,
    TransportError,
    TruncatedPayload,
)
from gridiron.sources.pacing import Pacer
from gridiron.sources.retry import backoff_delay, parse_retry_after

log = logging.getLogger(__name__)
PROBE_ATTEMPTS = 2


class CFBDClient:
    """HTTP access to the CFBD routes we use. Raises `SourceError` subclasses, never httpx errors."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout_seconds: float = 30.0,
        max_in_flight: int = 4,
        min_request_interval: float = 0.0,
        max_attempts: int = 4,
        backoff_seconds: float = 1.0,
        max_retry_after_seconds: float = 120.0,
        max_requests_per_partition: int | None = None,
        min_calls_left: int = 0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ):
        if not api_key:
            raise AuthError("CFBD API key is missing: set CFBD_API_KEY")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": f"gridiron/{__version__}",
            },
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            follow_redirects=True,  # httpx drops the Authorization header on a cross-host redirect
        )
        self._in_flight = threading.BoundedSemaphore(max_in_flight)
        self._pacer = Pacer(min_request_interval)
        self.deadline_seconds = 4 * timeout_seconds  # a whole answer, however it trickles in
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.max_requests_per_partition = max_requests_per_partition  # None: no budget
        self.requests_by_partition: dict[str, int] = {}
        self.min_calls_left = min_calls_left
        self._sending = 0  # requests sent and not answered yet (they spend calls too)
        self._probe_lock = threading.Lock()
        self.unavailable: SourceUnavailable | None = None  # once set, the circuit is open
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.calls_made = 0
        self.calls_remaining: int | None = None
        self.remaining_by_partition: dict[str, int] = {}  # each partition's own answer's figure
        self.retry_delays: list[float] = []  # every delay slept, for logs and tests
        self.refused: AuthError | QuotaExceededError | None = None  # once set, no more calls

    # -- public ------------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, *, partition: str | None = None) -> Any:
        """GET a route and return its parsed JSON, retrying recoverable faults."""
        if self._budget_spent(partition):  # a later retry of a partition that already spent it
            raise RetryBudgetSpent(
                f"not calling: its {self.max_requests_per_partition} requests (max_retries + 1) are spent",
                partition=partition,
            )
        attempt = 0
        while True:
            try:
                return self._get_once(path, params or {}, partition)
            except RecoverableSourceError as error:
                attempt += 1
                gives_up = self._budget_spent(partition) or attempt >= self.max_attempts
                no_answer = isinstance(error, (TransportError, ServerError))  # a 429 or a bad body is an answer
                if gives_up and no_answer and not self._answers():
                    raise self._unavailable_error(partition) from error
                if self._budget_spent(partition):
                    raise RetryBudgetSpent(
                        f"gave up after {self.requests_by_partition[partition]} requests (the retry budget: "
                        f"max_retries + 1): {error.message}", partition=partition, url=error.url,
                    ) from error
                if attempt >= self.max_attempts:
                    raise
                delay = backoff_delay(
                    attempt - 1, self.backoff_seconds, jitter=self.jitter, rng=self._rng
                )
                retry_after = error.retry_after
                if retry_after is not None:
                    if retry_after > self.max_retry_after_seconds:
                        raise  # the server asks for longer than we wait inside one call
                    delay = max(delay, retry_after)
                log.warning(
                    "CFBD %s: %s; retry %d/%d in %.2fs",
                    path, error, attempt, self.max_attempts - 1, delay,
                )
                with self._lock:
                    self.retry_delays.append(delay)
                time.sleep(delay)

    def _answers(self) -> bool:
        """Whether the API answers at all: the unmetered `/info`, asked twice half a second or more
        apart (any HTTP answer below 500 counts, a 401 included). Two failures open the circuit for
        the rest of this client's life."""
        with self._probe_lock:
            if self.unavailable is not None:
                return False
            for attempt in range(PROBE_ATTEMPTS):  # twice, apart: a burst of 5xx is not an outage
                if attempt:
                    time.sleep(max(0.5, self.backoff_seconds))
                try:
                    response, _ = self._get_within_deadline("/info", {})
                    if response.status_code < 500:
                        return True
                    reason = f"/info answers HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    reason = f"/info does not answer either ({type(error).__name__}: {error})"
            self.unavailable = SourceUnavailable(
                f"the CFBD API at {self.base_url} is unavailable: {reason}", url=f"{self.base_url}/info")
            log.error("%s; no more calls this run", self.unavailable.message)
            return False

    def _unavailable_error(self, partition: str | None) -> SourceUnavailable:
        assert self.unavailable is not None
        return SourceUnavailable(self.unavailable.message, partition=partition, url=self.unavailable.url)

    def calls_left(self) -> int | None:
        """The month's calls left, read fresh from the unmetered `/info` (None when it does not say)."""
        try:
            info = self.get("/info")
        except SourceError as error:  # an unavailable API has said so already
            (log.info if isinstance(error, SourceUnavailable) else log.warning)(
                "could not read the calls left from /info: %s", error)
            return None
        remaining = info.get("remainingCalls") if isinstance(info, dict) else None
        if isinstance(remaining, (int, float)) and not isinstance(remaining, bool):
            with self._lock:
                self.calls_remaining = int(remaining)
            return int(remaining)
        return None

    def _budget_spent(self, partition: str | None) -> bool:
        if partition is None or self.max_requests_per_partition is None:
            return False
        with self._lock:
            return self.requests_by_partition.get(partition, 0) >= self.max_requests_per_partition

    def info(self) -> dict[str, Any] | None:
        """`/info`: patron level and remaining calls (None when the key is not recognised)."""
        return self.get("/info")

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def __enter__(self) -> CFBDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ---------------------------------------------------------------------------
    def _get_once(self, path: str, params: dict[str, Any], partition: str | None) -> Any:
        if self.refused is not None:  # a bad key or a spent quota fails every call the same way
            raise type(self.refused)(f"not calling: {self.refused.message}", partition=partition)
        if self.unavailable is not None:
            raise SourceUnavailable(f"not calling: {self.unavailable.message}", partition=partition)
        url = f"{self.base_url}{path}"
        metered = path != "/info"
        with self._in_flight:
            self._pacer.wait()
            with self._lock:  # checked here, as the request goes out: the calls left are the latest
                if metered and self.calls_remaining is not None:
                    if self.calls_remaining <= 0:
                        raise QuotaExceededError(
                            "CFBD monthly call quota is used up (X-CallLimit-Remaining: 0); not calling",
                            partition=partition,
                        )
                    if self.calls_remaining - self._sending <= self.min_calls_left:
                        raise QuotaReserveReached(
                            f"not fetched: {self.calls_remaining - self._sending} calls left this month, "
                            f"{self.min_calls_left} kept in reserve (source.min_calls_reserve)",
                            partition=partition,
                        )
                if partition is not None:
                    self.requests_by_partition[partition] = self.requests_by_partition.get(partition, 0) + 1
                self._sending += metered
            try:
                response, body = self._get_within_deadline(path, params)
            except httpx.TimeoutException as error:
                raise TransportError(f"timeout ({type(error).__name__})", partition=partition, url=url) from error
            except httpx.TransportError as error:
                raise TransportError(f"connection failed ({error})", partition=partition, url=url) from error
            finally:
                with self._lock:
                    self._sending -= metered
        with self._lock:
            self.calls_made += 1
            remaining = response.headers.get("X-CallLimit-Remaining")
            if remaining is not None:
                try:
                    value = int(float(remaining))
                except ValueError:
                    log.warning("ignoring malformed X-CallLimit-Remaining %r", remaining)
                else:
                    # concurrent answers arrive in any order: the count only goes down within a run
                    # (a slow answer's older, higher figure must not undo a newer one)
                    self.calls_remaining = value if self.calls_remaining is None else min(self.calls_remaining, value)
                    if partition is not None:
                        self.remaining_by_partition[partition] = value
        try:
            self._raise_for_status(response, body, partition, str(response.request.url))
        except (AuthError, QuotaExceededError) as refused:
            self.refused = refused
            raise
        except RateLimitedError as limited:
            retry_after = None if limited.retry_after is None else min(limited.retry_after, self.max_retry_after_seconds)
            self._pacer.slow_down(retry_after)
            raise
        self._pacer.answered()
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TruncatedPayload(
                f"response is not valid JSON ({error}; {len(body)} bytes)", partition=partition, url=url
            ) from error

    def _get_within_deadline(self, path: str, params: dict[str, Any]) -> tuple[httpx.Response, bytes]:
        """GET with an overall deadline: httpx's read timeout is per chunk, so a server trickling
        bytes could otherwise hold a request open for ever. Returns the response and its body."""
        deadline = time.monotonic() + self.deadline_seconds
        with self._http.stream("GET", path, params=params) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"no complete answer within {self.deadline_seconds:g} s")
        return response, b"".join(chunks)

    @staticmethod
    def _message(body: bytes) -> str:
        text = body.decode("utf-8", errors="replace").strip()
        try:
            parsed = json.loads(text)
        except ValueError:
            return text[:200]
        if isinstance(parsed, dict) and "message" in parsed:
            return str(parsed["message"])
        return text[:200]

    def _raise_for_status(self, response: httpx.Response, body: bytes, partition: str | None, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        message = self._message(body)
        where = {"partition": partition, "url": url}
        if status in (401, 403):
            raise AuthError(
                f"CFBD API key is missing or invalid (HTTP {status}: {message or 'unauthorized'}); "
                "check CFBD_API_KEY",
                **where,
            )
        if status == 429:
            if "quota" in message.lower():
                raise QuotaExceededError(
                    f"CFBD monthly call quota exceeded (HTTP 429: {message}); not retrying", **where
                )
            raise RateLimitedError(
                f"rate limited (HTTP 429{': ' + message if message else ''})",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                **where,
            )
        if status >= 500:
            raise ServerError(
                f"server error (HTTP {status}{': ' + message if message else ''})",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),  # valid on 503
                **where,
            )
        raise RequestError(f"request refused (HTTP {status}{': ' + message if message else ''})", **where)


class ApiSource:
    """`Source` over the live API (or any server speaking its routes)."""

    name = "api"
    metered = True  # its calls cost the month's quota

    def __init__(self, client: CFBDClient):
        self.client = client
        self.description = f"the CFBD API at {client.base_url}"

    def seasons_available(self, endpoint: str) -> set[int] | None:
        """None: the API may be asked for any season."""
        return None

    def version(self, partition: Partition) -> str | None:
        """None: only fetching tells whether a partition changed."""
        return None  # only fetching tells (refresh_age_days says when a complete season is fetched again)

    def calls_left(self) -> int | None:
        """The month's calls left, from the unmetered /info."""
        return self.client.calls_left()

    def fetch(self, partition: Partition) -> FetchResult:
        """The partition's rows from its route, checked for shape, with the calls left after it."""
        payload = self.client.get(partition.spec.route, partition.params, partition=partition.key)
        rows = check_shape(partition, payload)
        return FetchResult(
            partition=partition,
            payload=rows,
            fetched_at=clock.now(),
            source=self.name,
            calls_remaining=self.client.remaining_by_partition.get(partition.key, self.client.calls_remaining),
            meta={"url": f"{self.client.base_url}{partition.spec.route}"},
        )

    def close(self) -> None:
        """Close the client."""
        self.client.close()
