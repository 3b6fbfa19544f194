"""Shared fixtures: a clean environment, one Prefect server per session, snapshot subsets, fake API.

Shared helper functions live in `tests/helpers.py` (test modules never import each other).

The environment is set here, at import, because Prefect reads its settings when it is imported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="gridiron-tests-"))
for name in list(os.environ):
    if name.startswith(("GRIDIRON_", "CFBD_", "PREFECT_")):
        del os.environ[name]  # a developer's shell must not steer the tests
os.environ.update({
    "PREFECT_HOME": str(_SESSION_DIR / "prefect"),
    "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(_SESSION_DIR / "results"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
})

import pytest  # noqa: E402

from gridiron.testing.fake_cfbd import FakeCFBD  # noqa: E402
from gridiron.testing.snapshots import SMALL, copy_snapshot  # noqa: E402
from tests.helpers import API_KEY, write_config  # noqa: E402


@pytest.fixture
def small_snapshot(tmp_path: Path) -> Path:
    """Two seasons of games, one of everything else: real data, small enough for flow tests."""
    return copy_snapshot(tmp_path / "snapshot", SMALL)


@pytest.fixture
def config_file(tmp_path: Path, small_snapshot: Path) -> Path:
    return write_config(
        tmp_path / "pipeline_config.yaml",
        source={"snapshot_dir": str(small_snapshot)},
        storage={"home": str(tmp_path / "home")},
    )


@pytest.fixture
def fake_cfbd(small_snapshot: Path):
    with FakeCFBD(small_snapshot, api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect server (temporary database) for every flow test of the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # Flow heartbeats (Prefect's crash detection) cost each flow run about a second while its
    # heartbeat thread is joined; these in-process tests do not exercise crash detection.
    with prefect_test_harness(server_startup_timeout=60), temporary_settings(
        {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        yield


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


# The files that take longest, longest first (measured with --durations=0 on 2 cores). The workers
# take whole files in collection order, so the long ones start first and the short ones fill the
# end: no worker is left running one long file while the others are done.
LONGEST_FIRST = ("test_faults.py", "test_flows.py", "test_operate.py", "test_flows_api.py", "test_cli.py",
                 "test_scale.py", "test_backup_flows.py", "test_monitor.py", "test_model.py", "test_quality_flows.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order
