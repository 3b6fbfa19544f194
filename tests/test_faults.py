"""Fault injection: each fault of the fake CFBD server (and of the process, the config and the
secrets) against a warehouse built from real data; every data table and every backup is compared
by content checksum before and after. RELIABILITY.md has one row per case.

Set RELIABILITY_TIMES to a file path to have each case's time to outcome written there
(`bench/reliability.py` does, to write RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows import ncaa_pipeline
from gridiron.storage import connect, content_checksums, list_backups, lock_holder
from gridiron.tables import PARTITION_TABLES, TABLES
from gridiron.testing.fake_cfbd import FakeCFBD, Fault
from gridiron.testing.snapshots import SMALL, copy_snapshot
from tests.helpers import API_KEY, REPO, write_config

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.flow]

DATA_TABLES = sorted(TABLES) + ["raw_manifest", "raw_payloads"]


def data_checksums(home: Path) -> dict[str, str]:
    with connect(home / "gridiron.duckdb", read_only=True) as con:
        return content_checksums(con, DATA_TABLES)


def backup_checksums(home: Path) -> dict[str, dict[str, str]]:
    return {info.name: info.files for info in list_backups(home / "backups")}


def record_time(case: str, seconds: float, outcome: str) -> None:
    target = os.environ.get("RELIABILITY_TIMES")
    if target:
        with open(target, "a") as handle:
            handle.write(json.dumps({"case": case, "seconds": round(seconds, 2), "outcome": outcome}) + "\n")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A warehouse (with its first backup) built from the fake API once for the module."""
    root = tmp_path_factory.mktemp("faults")
    snapshot = copy_snapshot(root / "snapshot", SMALL)
    with FakeCFBD(snapshot, api_key=API_KEY) as api:
        config = write_config(root / "seed.yaml", storage={"home": str(root / "home")})
        previous = {k: os.environ.get(k) for k in ("CFBD_API_KEY", "CFBD_BASE_URL")}
        os.environ.update({"CFBD_API_KEY": API_KEY, "CFBD_BASE_URL": api.url})
        try:
            ncaa_pipeline(config_path=str(config))
        finally:
            for key, value in previous.items():
                os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return root


class Case:
    """A warehouse copied from the template, a fake API over the same real data, a config."""

    def __init__(self, template: Path, tmp_path: Path, monkeypatch, **config):
        self.home = tmp_path / "home"
        shutil.copytree(template / "home", self.home)
        self.api = FakeCFBD(template / "snapshot", api_key=API_KEY).start()
        monkeypatch.setenv("CFBD_API_KEY", API_KEY)
        monkeypatch.setenv("CFBD_BASE_URL", self.api.url)
        settings = {"refresh_age_days": 0, "http_max_attempts": 2, **config.pop("source", {})}
        self.config = write_config(tmp_path / "fault.yaml", storage={"home": str(self.home)}, max_retries=2,
                                   source=settings, **config)
        self.data, self.backups = data_checksums(self.home), backup_checksums(self.home)

    def run(self, case: str, **kwargs):
        started = time.monotonic()
        state = ncaa_pipeline(config_path=str(self.config), return_state=True, **kwargs)
        seconds = time.monotonic() - started
        record_time(case, seconds, state.type.value)
        return state

    def unchanged(self, compare: str = "all") -> bool:
        """`all`: every data table and every backup; `staged`: the staging and mart tables the
        partitions produce (for a fault whose payload differs in form only: the raw layer, the
        model and the backups then legitimately move on)."""
        now = data_checksums(self.home)
        if compare == "staged":
            return {t: now[t] for t in PARTITION_TABLES} == {t: self.data[t] for t in PARTITION_TABLES}
        return now == self.data and backup_checksums(self.home) == self.backups

    def close(self):
        self.api.stop()


@pytest.fixture
def case(template, tmp_path, monkeypatch):
    made = []

    def make(**config) -> Case:
        made.append(Case(template, tmp_path, monkeypatch, **config))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _mutate_rows(change):
    def body(rows):
        return [change(dict(row)) for row in rows]
    return body


def _renamed(row):
    row["home_points"] = row.pop("homePoints")
    return row


def _nested(row):
    row["homePoints"] = {"value": row["homePoints"]}
    return row


def _strings(row):
    row["homePoints"] = None if row["homePoints"] is None else str(row["homePoints"])
    return row


def _extra(row):
    row["newField"] = {"added": "by a later API version"}
    return row


def _missing(row):
    row.pop("venue", None)
    return row


# (case, faults, expected state, a phrase of the message (failed runs), what must be unchanged)
API_FAULTS = [
    ("429 with Retry-After", [Fault("/games", "status", status=429, headers={"Retry-After": "0.2"}, times=2)],
     "COMPLETED", None),
    ("429 without Retry-After", [Fault("/lines", "status", status=429, times=2)], "COMPLETED", None),
    ("a burst of 500, 502 and 503", [Fault(None, "status", status=s, times=1) for s in (500, 502, 503)],
     "COMPLETED", None),
    ("5xx on every call", [Fault(None, "status", status=503, times=-1)], "FAILED",
     "the CFBD API at {url} is unavailable: /info answers HTTP 503 (recoverable, but not within this run); "
     "12 of 12 partitions not fetched and the warehouse is unchanged: check CFBD_BASE_URL"),
    ("a read timeout, once", [Fault("/teams", "delay", delay=4.5, times=1)], "COMPLETED", None),
    ("a hang on one partition", [Fault("/lines", "delay", delay=10, times=-1)], "FAILED",
     "lines/2023: gave up after 3 requests (the retry budget: max_retries + 1): timeout"),
    ("a disconnect mid-body", [Fault("/games", "disconnect", params={"year": "2023"}, times=1)], "COMPLETED", None),
    ("truncated JSON, once", [Fault("/games", "malformed", params={"year": "2022"}, times=1)], "COMPLETED", None),
    ("truncated JSON, every time", [Fault("/games", "malformed", params={"year": "2022"}, times=-1)], "FAILED",
     "games/2022: gave up after 3 requests (the retry budget: max_retries + 1): response is not valid JSON"),
    ("valid JSON of the wrong shape", [Fault("/conferences", "wrong_shape", times=-1)], "FAILED",
     "conferences: conferences season None: expected a JSON array, got dict"),
    ("schema drift: a renamed field", [Fault("/games", "mutate", params={"year": "2023"}, body=_mutate_rows(_renamed), times=-1)],
     "FAILED", "games/2023: games season 2023: row 0 lacks homePoints"),
    ("schema drift: a nested field", [Fault("/games", "mutate", params={"year": "2023"}, body=_mutate_rows(_nested), times=-1)],
     "FAILED", "games/2023: games: column 'homePoints' has {'value': "),
    ("schema drift: numbers as strings", [Fault("/games", "mutate", body=_mutate_rows(_strings), times=-1)],
     "COMPLETED", None, "staged"),
    ("schema drift: an extra field", [Fault("/games", "mutate", body=_mutate_rows(_extra), times=-1)],
     "COMPLETED", None, "staged"),
    ("an empty array for a season that had data", [Fault("/games", "mutate", params={"year": "2023"}, body=lambda rows: [], times=-1)],
     "FAILED", "games/2023: the source returned 0 rows where 3734 are loaded"),
    ("slow answers", [Fault(None, "delay", delay=0.2, times=-1)], "COMPLETED", None),
]


API_FAULTS = [case if len(case) == 5 else (*case, "all") for case in API_FAULTS]


@pytest.mark.parametrize("name,faults,expected,message,compare", API_FAULTS, ids=[c[0] for c in API_FAULTS])
def test_an_api_fault_changes_no_stored_data(case, name, faults, expected, message, compare):
    # 3 s: well under the delays that stand for timeouts, well over what a busy machine takes to
    # serve a season of games on loopback
    run = case(source={"timeout_seconds": 3})
    for fault in faults:
        run.api.add_fault(fault)
    state = run.run(name)
    assert state.type.value == expected, state.message
    if message:
        assert message.replace("{url}", run.api.url) in state.message
    assert run.unchanged(compare)


def test_a_missing_field_is_read_as_null_and_said_in_the_log(case):
    run = case()
    run.api.add_fault(Fault("/games", "mutate", params={"year": "2023"}, body=_mutate_rows(_missing), times=-1))
    state = run.run("schema drift: a missing field")
    assert state.is_completed()
    with duckdb.connect(str(run.home / "gridiron.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(venue) FROM games WHERE season = 2023").fetchone() == (0,)
        assert con.execute("SELECT count(venue) FROM games WHERE season = 2022").fetchone()[0] > 3000
    log = next((run.home / "logs").glob("pipeline_*.log")).read_text()
    assert "games/2023: no row carries venue; read as null" in log


def test_a_refused_connection_fails_fast_and_names_what_to_do(case, monkeypatch):
    run = case()
    monkeypatch.setenv("CFBD_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    state = run.run("connection refused (dead API)")
    assert state.is_failed()
    assert ("the CFBD API at http://127.0.0.1:9 is unavailable: /info does not answer either (ConnectError"
            in state.message)
    assert "12 of 12 partitions not fetched and the warehouse is unchanged: check CFBD_BASE_URL" in state.message
    assert run.unchanged()


def test_a_revoked_key_fails_fast(case, monkeypatch):
    run = case()
    monkeypatch.setenv("CFBD_API_KEY", "revoked")
    state = run.run("401")
    assert state.is_failed() and "CFBD API key is missing or invalid (HTTP 401" in state.message
    assert "(fatal); 12 of 12 partitions not fetched" in state.message
    assert run.api.metered == []  # /info answered 401: no metered call was sent
    assert run.unchanged()


def test_quota_spent_before_the_run_fetches_nothing_and_says_so(case):
    run = case()
    run.api.calls_remaining = 0
    state = run.run("quota exhausted before the run")
    result = state.result()
    assert state.is_completed() and len(result.not_fetched) == 12 and run.api.metered == []
    assert set(result.not_fetched.values()) == {"over the API call budget (0 calls may be spent)"}
    assert run.unchanged()


def test_quota_reserve_reached_during_the_run_keeps_what_was_fetched(case):
    run = case(source={"min_calls_reserve": 50, "max_concurrent_requests": 1})
    run.api.calls_remaining = 1000
    # other tools spend the month's calls while the run goes on: after 4 of ours, 51 are left
    original = run.api.answer

    def answer(path, query, authorization):
        reply = original(path, query, authorization)
        if len(run.api.metered) == 4:
            run.api.calls_remaining = 51
        return reply

    run.api.answer = answer
    state = run.run("quota reserve reached during the run")
    result = state.result()
    assert state.is_completed()
    assert len(run.api.metered) == 5 and len(result.not_fetched) == 7  # 1 more, then the reserve
    assert all("kept in reserve (source.min_calls_reserve)" in r for r in result.not_fetched.values())
    with duckdb.connect(str(run.home / "gridiron.duckdb"), read_only=True) as con:
        assert con.execute("SELECT min(calls_remaining) FROM raw_fetches").fetchone() == (50,)
    assert run.unchanged()


def test_a_conference_name_with_a_quote_works_and_injects_nothing(case):
    run = case(conferences=["Big Ten", "O'Brien's League'); DROP TABLE games; --"])
    state = run.run("a conference with a quote", full_refresh=True)
    assert state.is_completed()
    with duckdb.connect(str(run.home / "gridiron.duckdb"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT conference FROM standings").fetchall() == [("Big Ten",)]
        assert con.execute("SELECT count(*) FROM games").fetchone() == (7439,)
    log = next((run.home / "logs").glob("pipeline_*.log")).read_text()
    assert "match no team's conference this season" in log


def test_two_runs_on_one_home_the_second_is_refused_at_once(case, tmp_path):
    run = case()
    run.api.add_fault(Fault("/games", "delay", delay=4, times=2))  # the first run takes a while
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-m", "gridiron", "--config", str(run.config), "run"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while lock_holder(run.home) is None and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        holder = lock_holder(run.home)
        assert holder is not None, first.communicate()[1][-2000:]
        state = run.run("two runs on one GRIDIRON_HOME")
        assert state.is_failed()
        assert f"another pipeline run is using {run.home}: flow run '{holder['flow_run_name']}'" in state.message
        assert "refused before any API call" in state.message
        out, err = first.communicate(timeout=240)
    finally:
        first.kill()
    assert first.returncode == 0, err[-2000:]
    with duckdb.connect(str(run.home / "gridiron.duckdb"), read_only=True) as con:
        statuses = dict(con.execute(
            "SELECT status, count(*) FROM pipeline_runs WHERE started_at > now() - INTERVAL 1 HOUR GROUP BY 1").fetchall())
        assert statuses.get("refused") == 1 and statuses.get("completed", 0) >= 2  # the template's and the first's
    assert run.unchanged()


def test_secrets_never_reach_logs_warehouse_backups_artifacts_or_parameters(case, monkeypatch):
    import base64

    from prefect.client.orchestration import get_client

    slack, smtp = "https://hooks.slack.example/services/T0/B0/very-secret", "smtp-very-secret"
    backup_key = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv("GRIDIRON_SLACK_WEBHOOK", slack)
    monkeypatch.setenv("GRIDIRON_SMTP_PASSWORD", smtp)
    monkeypatch.setenv("GRIDIRON_BACKUP_KEY", backup_key)
    run = case(backup={"encryption": True})
    run.api.add_fault(Fault("/games", "mutate", params={"year": "2023"},
                            body=_mutate_rows(lambda r: {**r, "homePoints": (r["homePoints"] or 0) + 1}), times=-1))
    assert run.run("secrets").is_completed()  # a run that loads and backs up
    monkeypatch.setenv("CFBD_API_KEY", "a-revoked-" + API_KEY)
    failed = run.run("secrets, failed run")
    secrets = [API_KEY, slack, smtp, backup_key]
    assert [p for p in (run.home / "backups").rglob("*.parquet.enc")]  # the run's backup is encrypted
    texts = [failed.message]
    texts += [p.read_text(errors="replace") for p in (run.home / "logs").rglob("*") if p.is_file()]
    with duckdb.connect(str(run.home / "gridiron.duckdb"), read_only=True) as con:
        for table, column in con.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'").fetchall():
            for secret in secrets:
                found = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)', [secret]).fetchone()[0]
                assert found == 0, (table, column)
        payloads = con.execute("SELECT payload_gzip FROM raw_payloads").fetchall()
    import gzip

    texts += [gzip.decompress(bytes(p[0])).decode() for p in payloads]
    for backup in (run.home / "backups").iterdir():
        for path in backup.iterdir():
            if path.suffix == ".parquet":
                with duckdb.connect() as con:
                    texts.append(json.dumps(con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall(), default=str))
            else:
                texts.append(path.read_text(errors="replace"))
    with get_client(sync_client=True) as client:
        texts += [json.dumps(r.parameters) + str(r.state.message if r.state else "") for r in client.read_flow_runs()]
        texts += [json.dumps(a.data, default=str) + str(a.description) for a in client.read_artifacts()]
    assert len(texts) > 20
    for secret in secrets:
        assert not [t[:80] for t in texts if secret in t]


def test_losing_the_prefect_server_ends_the_run_in_bounded_time_and_changes_nothing(case, tmp_path):
    from gridiron.testing.servers import PrefectServer

    run = case()
    run.api.add_fault(Fault("/games", "delay", delay=3, times=-1))  # the run is still collecting
    with PrefectServer(tmp_path / "prefect") as server:
        env = {**os.environ, **server.env, "PYTHONPATH": str(REPO), "GRIDIRON_PREFECT_LOST_SECONDS": "5"}
        process = subprocess.Popen([sys.executable, "-m", "gridiron", "--config", str(run.config), "run"],
                                   cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while lock_holder(run.home) is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lock_holder(run.home) is not None, process.communicate()[1][-2000:]
        started = time.monotonic()
        server.process.terminate()  # the server goes away mid-run
        server.process.wait(timeout=30)
    try:
        out, err = process.communicate(timeout=180)
    finally:
        process.kill()
    record_time("the Prefect server stopped during a run", time.monotonic() - started, "FAILED")
    assert process.returncode == 1
    last = err.strip().splitlines()[-1]
    # a call that meets the dead server fails the run at once; a run waiting on other work is ended
    # by the watchdog (GRIDIRON_PREFECT_LOST_SECONDS): either way the last line names the Prefect API
    assert last.startswith(f"gridiron: run failed: the Prefect API at {server.url} "), err[-2000:]
    assert "does not answer" in last or "stopped answering" in last
    assert lock_holder(run.home) is None  # released with the process
    assert run.unchanged()
    # what a killed run leaves, the next one copes with: no lock held, nothing half-committed
