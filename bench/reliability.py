"""Run the fault-injection tests and write RELIABILITY.md: one row per fault, with the outcome the
test observed, the time to that outcome and the data lost (content checksums before and after).

    .venv/bin/python bench/reliability.py        # about 4 minutes on 2 cores

Times of the pipeline faults are the run's own (in-process flow on a running Prefect server, the
fake CFBD server on 127.0.0.1); the others are the whole test's (pytest's junit time).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

F = "tests/test_faults.py::test_an_api_fault_changes_no_stored_data"
# (fault, expected outcome, test id, case name for the run's own time or None)
ROWS = [
    ("API: 429 with Retry-After", "waits as told, retried, run completes", f"{F}[429 with Retry-After]", "429 with Retry-After"),
    ("API: 429 without Retry-After", "jittered backoff, run completes", f"{F}[429 without Retry-After]", "429 without Retry-After"),
    ("API: a burst of 500, 502, 503", "retried within the budget, run completes (the /info probe is asked twice, so a burst is no outage)", f"{F}[a burst of 500, 502 and 503]", "a burst of 500, 502 and 503"),
    ("API: 5xx on every call", "stops fast: 'unavailable ... (recoverable, but not within this run); N of N partitions not fetched ... check CFBD_BASE_URL'", f"{F}[5xx on every call]", "5xx on every call"),
    ("API: connection refused (dead port)", "stops fast with the same one line", "tests/test_faults.py::test_a_refused_connection_fails_fast_and_names_what_to_do", "connection refused (dead API)"),
    ("API: a read timeout, once", "retried, run completes", f"{F}[a read timeout, once]", "a read timeout, once"),
    ("API: a hang on one partition", "that partition fails after max_retries + 1 requests, the others load, run Failed", f"{F}[a hang on one partition]", "a hang on one partition"),
    ("API: a disconnect mid-body", "retried like a transport fault, run completes", f"{F}[a disconnect mid-body]", "a disconnect mid-body"),
    ("API: truncated JSON, once", "retried, run completes", f"{F}[truncated JSON, once]", "truncated JSON, once"),
    ("API: truncated JSON, every time", "the partition fails after the budget ('not valid JSON'), run Failed", f"{F}[truncated JSON, every time]", "truncated JSON, every time"),
    ("API: valid JSON of the wrong shape", "not retried; the partition fails naming endpoint and season", f"{F}[valid JSON of the wrong shape]", "valid JSON of the wrong shape"),
    ("API: schema drift, a renamed field", "the partition fails ('row 0 lacks homePoints'), its season stays", f"{F}[schema drift: a renamed field]", "schema drift: a renamed field"),
    ("API: schema drift, a nested field", "the partition fails naming column and value", f"{F}[schema drift: a nested field]", "schema drift: a nested field"),
    ("API: schema drift, numbers as strings", "read as numbers, a WARNING says so; staged tables unchanged", f"{F}[schema drift: numbers as strings]", "schema drift: numbers as strings"),
    ("API: schema drift, an extra field", "ignored, a WARNING names it; staged tables unchanged", f"{F}[schema drift: an extra field]", "schema drift: an extra field"),
    ("API: schema drift, a missing field", "read as null, a WARNING names it (the API said so: not a loss of ours)", "tests/test_faults.py::test_a_missing_field_is_read_as_null_and_said_in_the_log", "schema drift: a missing field"),
    ("API: an empty array for a season that had data", "refused ('0 rows where 3734 are loaded'), the season stays", f"{F}[an empty array for a season that had data]", "an empty array for a season that had data"),
    ("API: slow answers", "run completes", f"{F}[slow answers]", "slow answers"),
    ("API: 401", "stops at once, no metered call ('check CFBD_API_KEY')", "tests/test_faults.py::test_a_revoked_key_fails_fast", "401"),
    ("API: monthly quota spent before the run", "nothing fetched, WARNING, PipelineResult.not_fetched names all 10", "tests/test_faults.py::test_quota_spent_before_the_run_fetches_nothing_and_says_so", "quota exhausted before the run"),
    ("API: quota reserve reached during the run", "fetching stops at the reserve; what was fetched is kept and recorded", "tests/test_faults.py::test_quota_reserve_reached_during_the_run_keeps_what_was_fetched", "quota reserve reached during the run"),
    ("Process: SIGTERM while collect waits on a hung API", "exit 143; the last line and pipeline_runs.error say 'stopped by SIGTERM during collect: nothing of this run was committed ...; a rerun is safe'", "tests/test_cli.py::test_a_run_stopped_by_sigterm_says_so_last_and_records_why", None),
    ("Process: SIGKILL during load", "the warehouse opens with exactly the previous content", "tests/test_backup.py::test_a_load_killed_with_sigkill_leaves_the_previous_content", None),
    ("Process: SIGKILL during backup", "no half-written backup is listed; every listed one is whole", "tests/test_backup.py::test_a_backup_killed_with_sigkill_leaves_no_backup_that_looks_whole", None),
    ("Warehouse: bytes flipped in every block of the DuckDB file", "health FAILs its warehouse check, and every command's last line, naming the file and `gridiron restore --at <newest whole backup>`; that restore brings it back", "tests/test_backup.py::test_a_damaged_warehouse_is_named_with_the_restore_that_brings_it_back", None),
    ("Backup: bytes flipped in the newest backup's Parquet file", "backup --list marks it DAMAGED with the file; restore --at uses the next older verified backup and says why", "tests/test_backup.py::test_a_damaged_newest_backup_is_passed_over_for_the_next_older_whole_one_and_said", None),
    ("Backup: every backup damaged", "restore refuses in one line naming each backup and file; the warehouse is unchanged", "tests/test_backup.py::test_when_every_backup_is_damaged_the_restore_names_each_and_changes_nothing", None),
    ("Config: backup_retention_days: 0", "a config error naming the key (exit 2), as for every numeric key where 0 is not meant", "tests/test_config.py::test_every_numeric_key_has_bounds_and_refuses_zero_unless_zero_is_meant", None),
    ("Process: the home's filesystem fills during a run (a real tmpfs)", "no logging tracebacks; one last line naming the filesystem, the room left and the room a run needs; the warehouse unchanged; the same run completes once there is room", "tests/test_cli.py::test_a_full_disk_during_a_run_is_said_once_naming_the_filesystem_and_the_room_needed", None),
    ("Process: the disk fills during a backup", "BackupError '(File too large) ... older backups are untouched'", "tests/test_backup.py::test_a_disk_that_fills_during_a_backup_fails_it_and_keeps_the_old_ones", None),
    ("Process: two runs at once on one GRIDIRON_HOME", "the second is refused before any API call, naming the first; recorded 'refused'", "tests/test_faults.py::test_two_runs_on_one_home_the_second_is_refused_at_once", "two runs on one GRIDIRON_HOME"),
    ("Process: the Prefect server stopped during a run", "the run ends in bounded time, its last line naming the Prefect API; nothing half-committed, the lock released", "tests/test_faults.py::test_losing_the_prefect_server_ends_the_run_in_bounded_time_and_changes_nothing", "the Prefect server stopped during a run"),
    ("Process: a read-only home (a real read-only tmpfs)", "gridiron health shows a FAIL home line and exits 1; no IO traceback, nothing written", "tests/test_cli.py::test_health_on_a_read_only_home_is_a_fail_line_not_a_crash", None),
    ("Process: a run SIGKILLed before it recorded its end", "gridiron status lists it as left Running by a process that is gone (from the run lock's record)", "tests/test_cli.py::test_status_lists_a_run_whose_process_was_killed_before_it_recorded_its_end", None),
    ("Process: a run killed, left Running in Prefect", "gridiron health names it at once (the run lock's record)", "tests/test_health.py::test_a_run_left_running_by_a_dead_process_is_named_at_once", None),
    ("Process: the warehouse locked by another process", "waited for (15 s), then WarehouseBusy naming file and holder", "tests/test_warehouse.py::test_a_locked_warehouse_is_waited_for_then_named", None),
    ("Config: a conference name with a quote", "works, injects nothing (values reach SQL as parameters); a WARNING that it matches no conference", "tests/test_faults.py::test_a_conference_name_with_a_quote_works_and_injects_nothing", "a conference with a quote"),
    ("Config: a secret in the YAML", "refused, naming the environment variable", "tests/test_config.py::test_bad_config_gives_one_line_naming_key_and_value", None),
    ("Secrets: key, SMTP password, Slack URL", "in no log, warehouse column, payload, backup file, artifact, flow-run parameter or failure message", "tests/test_faults.py::test_secrets_never_reach_logs_warehouse_backups_artifacts_or_parameters", None),
    ("Config: the dashboard's address", "loopback (127.0.0.1) unless --host says otherwise; a busy port is one line", "tests/test_monitor.py::test_the_monitor_binds_loopback_unless_told_and_refuses_a_busy_port", None),
    ("Process: a dashboard polling every second during a full run", "the run completes; the page never errs", "tests/test_monitor.py::test_a_dashboard_polling_every_second_never_gets_in_the_way_of_a_run", None),
    ("Output: a failed `gridiron run`", "phases, then the one-line message last; no traceback (the log file keeps it)", "tests/test_cli.py::test_a_failed_run_shows_its_phases_and_ends_on_its_one_line_message", None),
]
NOT_COVERED = [
    ("Process: the Prefect server restarted while a run waits on it", "not tested: the run goes on if the server is back within GRIDIRON_PREFECT_LOST_SECONDS (30 s), else it ends as above"),
]


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gridiron-reliability-"))
    times_file, junit = work / "times.jsonl", work / "junit.xml"
    tests = sorted({row[2].split("::")[0] for row in ROWS})
    env = {**os.environ, "RELIABILITY_TIMES": str(times_file)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *tests],
                          cwd=REPO, env=env)
    times = {}
    if times_file.exists():
        for line in times_file.read_text().splitlines():
            entry = json.loads(line)
            times.setdefault(entry["case"], entry["seconds"])
    results = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('file') or case.get('classname').replace('.', '/') + '.py'}::{case.get('name')}"
        test_id = test_id.replace("tests/tests/", "tests/")
        failed = case.find("failure") is not None or case.find("error") is not None
        results[test_id] = ("FAILED", float(case.get("time", 0))) if failed else ("as expected", float(case.get("time", 0)))
    lines = [
        "# Reliability: what each fault does",
        "",
        "Written by `.venv/bin/python bench/reliability.py`, which runs the tests named below on "
        f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}). Every data table "
        "(the registry's tables, the manifest, the payloads) and every backup is compared by content checksum "
        "before and after each fault; *data lost* is what differs that should not.",
        "",
        "| fault | expected outcome | observed | time to outcome | data lost | test |",
        "|---|---|---|---|---|---|",
    ]
    survived = 0
    for fault, expected, test_id, case_name in ROWS:
        matching = [v for k, v in results.items() if k == test_id or k.split("[")[0] == test_id]
        observed = ("not run" if not matching else "FAILED" if any(o == "FAILED" for o, _ in matching)
                    else "as expected")
        whole = sum(t for _, t in matching)
        seconds = times.get(case_name) if case_name else None
        when = f"{seconds:.1f} s" if seconds is not None else f"{whole:.1f} s (whole test)"
        survived += observed == "as expected"
        lost = "0" if observed == "as expected" else "see the test"
        lines.append(f"| {fault} | {expected} | {observed} | {when} | {lost} | `{test_id}` |")
    lines += ["", f"**{len(ROWS)} faults tried, {survived} survived as expected, data lost: "
              f"{'none' if survived == len(ROWS) else 'see the failed rows'}.**", "", "Not covered yet:", ""]
    lines += [f"- {fault}: {why}" for fault, why in NOT_COVERED]
    (REPO / "RELIABILITY.md").write_text("\n".join(lines) + "\n")
    print(f"RELIABILITY.md: {survived}/{len(ROWS)} as expected")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
