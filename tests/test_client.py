"""The CFBD client end to end against a real local HTTP server speaking the CFBD routes."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gridiron.sources import (
    ApiSource,
    AuthError,
    CFBDClient,
    Partition,
    PayloadError,
    QuotaExceededError,
    QuotaReserveReached,
    RateLimitedError,
    RetryBudgetSpent,
    SnapshotSource,
    SourceUnavailable,
    is_recoverable,
)
from gridiron.sources.errors import RequestError, ServerError, SourceError, TransportError
from gridiron.sources.pacing import Pacer
from gridiron.sources.retry import backoff_delay, parse_retry_after
from gridiron.testing.fake_cfbd import FakeCFBD, Fault
from tests.helpers import API_KEY


def client(server: FakeCFBD, **options) -> CFBDClient:
    settings = {"min_request_interval": 0, "backoff_seconds": 0.01, "timeout_seconds": 5, "max_attempts": 4}
    settings.update(options)
    return CFBDClient(API_KEY, server.url, **settings)


def test_fetches_a_partition_with_bearer_auth_and_the_api_parameters(fake_cfbd, small_snapshot):
    with client(fake_cfbd) as api:
        result = ApiSource(api).fetch(Partition("games", 2023))
    expected = SnapshotSource(small_snapshot).fetch(Partition("games", 2023)).payload
    assert result.payload == expected and len(expected) == 3734
    request = fake_cfbd.requests_to("/games")[0]
    assert request["query"] == {"year": "2023", "seasonType": "both"}
    assert request["authorization"] == f"Bearer {API_KEY}"
    assert result.calls_remaining == 999 and result.source == "api"


def test_records_calls_remaining_from_every_response(fake_cfbd):
    with client(fake_cfbd) as api:
        source = ApiSource(api)
        source.fetch(Partition("teams"))
        source.fetch(Partition("conferences"))
        assert api.calls_remaining == 998
        assert api.info() == {"patronLevel": 0, "remainingCalls": 998}


def test_a_slow_answer_never_undoes_the_calls_left_of_a_newer_one(fake_cfbd):
    """Concurrent fetches answer in any order: the older, higher figure of a slow answer must not
    overwrite the newer one, and each fetch records its own answer's figure."""
    fake_cfbd.add_fault(Fault("/games", "delay", delay=1.0, times=1))
    with client(fake_cfbd) as api:
        source = ApiSource(api)
        results = {}
        slow = threading.Thread(target=lambda: results.setdefault("games", source.fetch(Partition("games", 2023))))
        slow.start()
        deadline = time.monotonic() + 30
        while not fake_cfbd.requests_to("/games") and time.monotonic() < deadline:
            time.sleep(0.01)  # the games call is in (the server counted it: 999 left), its answer delayed
        results["lines"] = source.fetch(Partition("lines", 2023))  # answered at once: 998 left
        slow.join(timeout=30)
    assert results["games"].calls_remaining == 999 and results["lines"].calls_remaining == 998
    assert api.calls_remaining == 998


def test_401_is_fatal_and_says_the_key_is_missing_or_invalid(fake_cfbd):
    with CFBDClient("wrong-key", fake_cfbd.url, min_request_interval=0) as api:
        with pytest.raises(AuthError, match="API key is missing or invalid .HTTP 401") as error:
            ApiSource(api).fetch(Partition("games", 2023))
    assert not is_recoverable(error.value)
    assert len(fake_cfbd.requests) == 1  # not retried


def test_after_a_401_the_client_makes_no_more_calls(fake_cfbd):
    with CFBDClient("wrong-key", fake_cfbd.url, min_request_interval=0) as api:
        source = ApiSource(api)
        with pytest.raises(AuthError):
            source.fetch(Partition("games", 2023))
        with pytest.raises(AuthError, match=r"not calling: CFBD API key is missing or invalid .* \[lines/2023\]"):
            source.fetch(Partition("lines", 2023))  # would fail the same way: refused before any call
    assert len(fake_cfbd.requests) == 1


def test_429_with_retry_after_then_200(fake_cfbd):
    fake_cfbd.add_fault(Fault("/lines", "status", status=429, headers={"Retry-After": "1"}))
    with client(fake_cfbd) as api:
        result = ApiSource(api).fetch(Partition("lines", 2023))
    assert len(result.payload) == 1350
    first, second = fake_cfbd.requests_to("/lines")
    assert second["time"] - first["time"] >= 1.0  # waited as the server asked, not the 10 ms backoff
    assert api.retry_delays == [1.0]


def test_retry_after_as_http_date():
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 28 <= parse_retry_after(format_datetime(later, usegmt=True)) <= 30
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("soon") is None


def test_retry_after_longer_than_we_wait_is_raised_as_recoverable(fake_cfbd):
    fake_cfbd.add_fault(Fault("/teams", "status", status=429, headers={"Retry-After": "3600"}))
    with client(fake_cfbd, max_retry_after_seconds=5) as api:
        with pytest.raises(RateLimitedError) as error:
            ApiSource(api).fetch(Partition("teams"))
    assert error.value.retry_after == 3600 and is_recoverable(error.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_200(fake_cfbd, status):
    fake_cfbd.add_fault(Fault("/conferences", "status", status=status, times=2))
    with client(fake_cfbd) as api:
        result = ApiSource(api).fetch(Partition("conferences"))
    assert len(result.payload) == 106
    assert len(fake_cfbd.requests_to("/conferences")) == 3


def test_5xx_that_persists_fails_recoverably_after_the_attempts(fake_cfbd):
    fake_cfbd.add_fault(Fault("/conferences", "status", status=503, times=-1))
    with client(fake_cfbd, max_attempts=3) as api:
        with pytest.raises(ServerError, match=r"HTTP 503.*conferences") as error:
            ApiSource(api).fetch(Partition("conferences"))
    assert is_recoverable(error.value)
    assert len(fake_cfbd.requests_to("/conferences")) == 3


def test_read_timeout_is_recoverable_and_retried(fake_cfbd):
    fake_cfbd.add_fault(Fault("/teams", "delay", delay=1.5))
    with client(fake_cfbd, timeout_seconds=0.5) as api:
        result = ApiSource(api).fetch(Partition("teams"))
    assert len(result.payload) == 1882
    assert len(fake_cfbd.requests_to("/teams")) == 2


def test_timeout_every_time_raises_transport_error(fake_cfbd):
    fake_cfbd.add_fault(Fault("/teams", "delay", delay=1.0, times=-1))
    with client(fake_cfbd, timeout_seconds=0.3, max_attempts=2) as api:
        with pytest.raises(TransportError, match="timeout"):
            ApiSource(api).fetch(Partition("teams"))


def test_an_api_that_answers_nothing_opens_the_circuit_at_once():
    """Refused everywhere, its unmetered /info too: the call fails as SourceUnavailable (not
    retried by the task) and every later call fails the same way without a request."""
    with CFBDClient(API_KEY, "http://127.0.0.1:9", max_attempts=2, backoff_seconds=0.01,
                    min_request_interval=0) as api:
        with pytest.raises(SourceUnavailable, match=r"the CFBD API at http://127.0.0.1:9 is unavailable: "
                           r"/info does not answer either \(ConnectError") as error:
            api.get("/games", {"year": 2023}, partition="games/2023")
        assert not is_recoverable(error.value)
        with pytest.raises(SourceUnavailable, match="not calling: the CFBD API"):
            api.get("/lines", {"year": 2023}, partition="lines/2023")
        assert api.requests_by_partition == {"games/2023": 2}


def test_5xx_on_every_route_opens_the_circuit(fake_cfbd):
    fake_cfbd.add_fault(Fault(None, "status", status=502, times=-1))
    with client(fake_cfbd, max_attempts=2) as api:
        with pytest.raises(SourceUnavailable, match="/info answers HTTP 502"):
            api.get("/games", {"year": 2023}, partition="games/2023")
    assert [r["path"] for r in fake_cfbd.requests] == ["/games", "/games", "/info", "/info"]


def test_a_truncated_body_is_retried_and_a_whole_one_accepted(fake_cfbd):
    fake_cfbd.add_fault(Fault("/teams", "malformed", times=1))
    with client(fake_cfbd) as api:
        assert api.get("/teams", partition="teams")
    assert len(fake_cfbd.requests_to("/teams")) == 2


def test_the_quota_reserve_stops_calls_before_they_are_sent(fake_cfbd):
    fake_cfbd.calls_remaining = 52
    with client(fake_cfbd, min_calls_left=50) as api:
        assert api.calls_left() == 52  # /info is not metered
        api.get("/teams", partition="teams")
        api.get("/conferences", partition="conferences")
        with pytest.raises(QuotaReserveReached, match="50 calls left this month, 50 kept in reserve"):
            api.get("/games", {"year": 2023}, partition="games/2023")
    assert [r["path"] for r in fake_cfbd.metered] == ["/teams", "/conferences"]


def test_json_that_stays_malformed_fails_the_partition_naming_endpoint_and_season(fake_cfbd):
    fake_cfbd.add_fault(Fault("/games", "malformed", times=-1))
    with client(fake_cfbd, max_requests_per_partition=3) as api:
        with pytest.raises(RetryBudgetSpent, match=r"gave up after 3 requests .*not valid JSON.*games/2023") as error:
            ApiSource(api).fetch(Partition("games", 2023))
    assert not is_recoverable(error.value)
    assert len(fake_cfbd.requests_to("/games")) == 3


def test_wrong_shape_fails_the_partition_naming_endpoint_and_season(fake_cfbd):
    fake_cfbd.add_fault(Fault("/games", "wrong_shape"))
    with client(fake_cfbd) as api:
        with pytest.raises(PayloadError, match="games season 2023: expected a JSON array, got dict"):
            ApiSource(api).fetch(Partition("games", 2023))


def test_rows_missing_keys_are_a_wrong_shape(fake_cfbd):
    fake_cfbd.add_fault(Fault("/games", "mutate", body=lambda rows: [{"id": 1}] + rows))
    with client(fake_cfbd) as api:
        with pytest.raises(PayloadError, match="games season 2023: row 0 lacks season"):
            ApiSource(api).fetch(Partition("games", 2023))


def test_quota_exceeded_is_not_retried(fake_cfbd):
    fake_cfbd.calls_remaining = 1
    with client(fake_cfbd) as api:
        source = ApiSource(api)
        source.fetch(Partition("teams"))  # spends the last call
        with pytest.raises(QuotaExceededError, match="quota"):
            source.fetch(Partition("conferences"))  # the client knows: no request at all
    assert len(fake_cfbd.requests) == 1


def test_quota_exceeded_answer_from_the_server_is_not_retried(fake_cfbd):
    fake_cfbd.add_fault(Fault(None, "status", status=429, body={"message": "Monthly call quota exceeded"}, times=-1))
    with client(fake_cfbd) as api:
        with pytest.raises(QuotaExceededError, match="Monthly call quota exceeded") as error:
            ApiSource(api).fetch(Partition("games", 2023))
    assert not is_recoverable(error.value)
    assert len(fake_cfbd.requests) == 1


def test_other_4xx_is_fatal(fake_cfbd):
    with client(fake_cfbd) as api:
        with pytest.raises(RequestError, match="HTTP 404"):
            api.get("/no/such/route")


def test_retry_delays_are_exponential_and_really_vary(fake_cfbd):
    """Jitter must spread retries: the same failures, retried twice, wait differently."""
    delays = []
    for seed in (1, 2):
        fake_cfbd.clear_faults()
        fake_cfbd.add_fault(Fault("/teams", "status", status=503, times=3))
        with client(fake_cfbd, backoff_seconds=0.1, rng=random.Random(seed)) as api:
            api.get("/teams")
            delays.append(api.retry_delays)
    for run in delays:
        assert len(run) == 3
        for retry, delay in enumerate(run):
            assert 0.05 * 2**retry <= delay <= 0.15 * 2**retry  # nominal 0.1 * 2^n, +-50 %
    assert delays[0] != delays[1]
    assert len({round(d / 2**i, 6) for i, d in enumerate(delays[0])}) == 3  # not one fixed factor


def test_backoff_delay_bounds():
    rng = random.Random(0)
    samples = [backoff_delay(3, 1.0, jitter=0.5, rng=rng) for _ in range(200)]
    assert 4.0 <= min(samples) and max(samples) <= 12.0 and len(set(samples)) == 200
    assert backoff_delay(20, 1.0, cap_seconds=30, jitter=0.0) == 30.0


def _get_at_once(api: CFBDClient, path: str, count: int) -> None:
    threads = [threading.Thread(target=api.get, args=(path,)) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_requests_in_flight_are_bounded(fake_cfbd):
    fake_cfbd.add_fault(Fault("/conferences", "delay", delay=0.3, times=-1))
    with client(fake_cfbd, max_in_flight=2, min_request_interval=0.05) as api:
        _get_at_once(api, "/conferences", 6)
    assert fake_cfbd.max_in_flight == 2


def test_request_starts_are_spaced_by_the_minimum_interval(fake_cfbd):
    with client(fake_cfbd, max_in_flight=6, min_request_interval=0.1) as api:
        _get_at_once(api, "/conferences", 6)
    starts = sorted(r["time"] for r in fake_cfbd.requests)
    # Six starts at least 0.1 s apart span 0.5 s. The whole span is checked, not each gap: on a
    # busy machine one arrival can lag and squeeze the next gap, but the span cannot shrink.
    assert starts[-1] - starts[0] >= 0.45


def test_a_429_holds_back_every_request_and_widens_the_spacing_until_answers_narrow_it(fake_cfbd):
    fake_cfbd.add_fault(Fault("/teams", "status", status=429, headers={"Retry-After": "1"}))
    with client(fake_cfbd, max_attempts=1) as api:
        assert api._pacer.interval == 0  # unpaced while the server keeps up
        with pytest.raises(RateLimitedError):
            api.get("/teams")
        told = fake_cfbd.requests_to("/teams")[0]["time"]
        assert api._pacer.interval == 0.25
        for _ in range(3):
            api.get("/conferences")
        starts = [r["time"] for r in fake_cfbd.requests_to("/conferences")]
        # another route's request waits for the Retry-After too, and the next ones keep the wider spacing
        assert starts[0] - told >= 1.0
        assert starts[2] - starts[0] >= 0.25 * 0.9 + 0.25 * 0.9 ** 2 - 0.01
        assert api._pacer.interval == pytest.approx(0.25 * 0.9 ** 3)
        for _ in range(40):
            api.get("/conferences")
        assert api._pacer.interval == 0  # back to the configured floor


def test_each_429_doubles_the_spacing_up_to_its_ceiling_and_never_below_the_floor():
    pacer = Pacer(0.05)
    seen = []
    for _ in range(6):
        pacer.slow_down(None)
        seen.append(pacer.interval)
    assert seen == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    for _ in range(100):
        pacer.answered()
    assert pacer.interval == 0.05
    assert Pacer(0.5).after_429 == 0.5  # a configured floor above the first step is kept


def test_missing_key_fails_fast_with_its_name():
    with pytest.raises(AuthError, match="CFBD_API_KEY"):
        CFBDClient("", "http://127.0.0.1:9")


def test_a_partition_costs_at_most_its_retry_budget_whoever_retries(fake_cfbd):
    """max_requests_per_partition (max_retries + 1) bounds the client's attempts and the task's
    retries together: a retry after the budget is spent sends nothing."""
    fake_cfbd.add_fault(Fault("/games", "status", status=503, times=-1))
    with client(fake_cfbd, max_attempts=4, max_requests_per_partition=3) as api:
        with pytest.raises(RetryBudgetSpent, match=r"gave up after 3 requests \(the retry budget: max_retries \+ 1\): server error \(HTTP 503") as error:
            api.get("/games", {"year": 2023}, partition="games/2023")
        assert not is_recoverable(error.value) and error.value.partition == "games/2023"
        with pytest.raises(RetryBudgetSpent, match="not calling: its 3 requests"):
            api.get("/games", {"year": 2023}, partition="games/2023")
        assert api.get("/teams", partition="teams")  # another partition has its own budget
    assert len(fake_cfbd.requests_to("/games")) == 3


def test_retry_after_is_honoured_within_the_budget(fake_cfbd):
    fake_cfbd.add_fault(Fault("/conferences", "status", status=503, headers={"Retry-After": "0.4"}, times=2))
    with client(fake_cfbd, max_attempts=3, max_requests_per_partition=3) as api:
        assert api.get("/conferences", partition="conferences")
    starts = [r["time"] for r in fake_cfbd.requests_to("/conferences")]
    assert len(starts) == 3 and all(b - a >= 0.4 for a, b in zip(starts, starts[1:]))


def test_503_with_retry_after_is_honoured(fake_cfbd):
    fake_cfbd.add_fault(Fault("/conferences", "status", status=503, headers={"Retry-After": "0.5"}))
    with client(fake_cfbd) as api:
        ApiSource(api).fetch(Partition("conferences"))
    assert api.retry_delays == [0.5]


def test_an_answer_trickling_in_past_the_deadline_is_a_timeout(small_snapshot):
    """httpx's read timeout is per chunk; the client's deadline bounds the whole answer."""
    import socket
    import threading as th

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = th.Event()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
        conn.close()

    thread = th.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with CFBDClient(API_KEY, f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_seconds=0.3,
                        max_attempts=1, min_request_interval=0) as api:
            started = time.monotonic()
            # the answer times out; /info does not answer either (nobody accepts): the API is down
            with pytest.raises(SourceUnavailable) as error:
                api.get("/teams")
            assert isinstance(error.value.__cause__, TransportError) and "timeout" in str(error.value.__cause__)
            assert time.monotonic() - started < 3
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def test_box_scores_are_asked_for_a_week_as_the_api_requires(tmp_path):
    """`/games/teams` answers 400 without a week, team or conference; per week, the fake server and
    the snapshot source give the same rows: that week's games only."""
    from gridiron.testing.snapshots import copy_snapshot

    snapshot = copy_snapshot(tmp_path / "snapshot", {"games": [2023], "games_teams": [2023]})
    week = Partition("games_teams", 2023, "postseason", 1)
    with FakeCFBD(snapshot, api_key=API_KEY) as server, client(server) as api:
        with pytest.raises(SourceError, match="400") as refused:
            api.get("/games/teams", {"year": 2023}, partition="games_teams/2023")
        assert "one of week, team or conference" in str(refused.value)
        rows = ApiSource(api).fetch(week).payload
        assert server.requests_to("/games/teams")[-1]["query"] == {"year": "2023", "seasonType": "postseason", "week": "1"}
    assert rows == SnapshotSource(snapshot).fetch(week).payload
    games = {g["id"]: g for g in SnapshotSource(snapshot).fetch(Partition("games", 2023)).payload}
    assert rows and all(games[r["id"]]["seasonType"] == "postseason" for r in rows)
    assert 401551789 in {r["id"] for r in rows}  # Michigan - Washington, the title game


def test_the_snapshot_hands_out_each_week_of_a_season_file_once_and_keeps_nothing_after(tmp_path):
    """Weekly reads of a season file split it once and let each week go when it is served, so a
    ten-season collect does not hold every parsed season; a week asked for again (a retry) still
    gets its rows, and an edited file is read afresh."""
    import os

    from gridiron.sources.snapshot import read_gzipped_json, rows_of_week
    from gridiron.testing.snapshots import copy_snapshot

    snapshot = copy_snapshot(tmp_path / "snapshot", {"games": [2023], "games_teams": [2023]})
    games = read_gzipped_json(snapshot / "games" / "2023.json.gz")
    rows = read_gzipped_json(snapshot / "games_teams" / "2023.json.gz")
    weeks = sorted({(g["seasonType"], g["week"]) for g in games})
    source = SnapshotSource(snapshot)
    served = {key: source.fetch(Partition("games_teams", 2023, *key)).payload for key in weeks}
    assert served == {key: rows_of_week(rows, games, *key) for key in weeks}
    assert sum(map(len, served.values())) == len(rows)  # every box score belongs to one week
    assert source._season_weeks == {}  # nothing held once every week was served
    first = Partition("games_teams", 2023, *weeks[0])
    assert source.fetch(first).payload == served[weeks[0]]  # asked again: parsed again
    assert source.fetch(Partition("games_teams", 2023, *weeks[1])).payload == served[weeks[1]]
    path = snapshot / "games_teams" / "2023.json.gz"
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
    assert source.fetch(Partition("games_teams", 2023, *weeks[1])).payload == served[weeks[1]]


def test_at_an_as_of_time_the_fake_api_serves_later_games_unplayed_lines_unscored_and_no_box_score_yet(tmp_path):
    from gridiron.testing.snapshots import copy_snapshot

    snapshot = copy_snapshot(tmp_path / "snap", {"games": [2023], "lines": [2023], "games_teams": [2023]})
    as_of = datetime(2023, 10, 15, 12, tzinfo=UTC)
    with FakeCFBD(snapshot, api_key=API_KEY) as server, client(server) as api:
        whole = ApiSource(api).fetch(Partition("games", 2023)).payload
        server.as_of = as_of
        games = ApiSource(api).fetch(Partition("games", 2023)).payload
        lines = ApiSource(api).fetch(Partition("lines", 2023)).payload
        played = ApiSource(api).fetch(Partition("games_teams", 2023, "regular", 6)).payload
        later = ApiSource(api).fetch(Partition("games_teams", 2023, "regular", 8)).payload
    kickoff = {g["id"]: datetime.fromisoformat(g["startDate"].replace("Z", "+00:00")) for g in whole}
    assert [g["id"] for g in games] == [g["id"] for g in whole]  # the schedule is all there
    after = [g for g in games if kickoff[g["id"]] > as_of]
    assert len(after) > 1000 and all(not g["completed"] and g["homePoints"] is None and g["homeLineScores"] is None
                                     and g["homePostgameElo"] is None for g in after)
    before = {g["id"]: g for g in games if kickoff[g["id"]] <= as_of}
    assert before == {g["id"]: g for g in whole if kickoff[g["id"]] <= as_of}  # what was played stays as it was
    assert all(row["homeScore"] is None for row in lines if kickoff.get(row["id"], as_of) > as_of)
    assert any(row["homeScore"] is not None for row in lines)
    assert len(played) > 50 and later == []


def test_the_pipeline_clock_is_the_wall_clock_unless_an_as_of_time_is_set(monkeypatch):
    from gridiron import clock

    monkeypatch.delenv(clock.AS_OF_VARIABLE, raising=False)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 60 and clock.as_of_override() is None
    monkeypatch.setenv(clock.AS_OF_VARIABLE, "2023-10-17T10:00:00Z")
    assert clock.now() == datetime(2023, 10, 17, 10, tzinfo=UTC)
    monkeypatch.setenv(clock.AS_OF_VARIABLE, "2023-10-17T06:00:00-04:00")
    assert clock.now() == datetime(2023, 10, 17, 10, tzinfo=UTC)
    monkeypatch.setenv(clock.AS_OF_VARIABLE, "2023-10-17 10:00")  # no zone: UTC
    assert clock.now() == datetime(2023, 10, 17, 10, tzinfo=UTC)
    monkeypatch.setenv(clock.AS_OF_VARIABLE, "last tuesday")
    with pytest.raises(clock.ClockError, match=r"GRIDIRON_AS_OF='last tuesday' is not an ISO 8601 time"):
        clock.now()
