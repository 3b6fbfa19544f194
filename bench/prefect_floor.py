"""What Prefect itself costs a run of gridiron's shape, with no work in it: the floor under a
no-change rerun (issue 12, target 2a), run by `bench/performance.py` against its server.

One process: import Prefect, then a parent flow (its heartbeat on, as `ncaa-pipeline`'s is) that
calls six subflows in turn (heartbeats off, as `flows.pipeline` runs them), each calling one
task that returns at once. Prints the seconds from the start of the process to its flows'
return; the caller times the whole process (its exit included).

    PREFECT_API_URL=... .venv/bin/python bench/prefect_floor.py
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings  # noqa: E402

PHASES = ("collect", "process", "train", "load", "validate", "backup")


@task(cache_policy=NO_CACHE)
def nothing(phase: str) -> str:
    return phase


def idle_phase(name: str):
    @flow(name=f"floor-{name}")
    def phase() -> str:
        return nothing(name)
    return phase


SUBFLOWS = [idle_phase(name) for name in PHASES]


@flow(name="floor-pipeline")
def pipeline() -> list[str]:
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return [subflow() for subflow in SUBFLOWS]


if __name__ == "__main__":
    pipeline()
    print(f"{time.perf_counter() - STARTED:.3f}")
