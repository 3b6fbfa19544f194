"""Backfill: past seasons as one run of the `ncaa-pipeline/backfill` deployment per chunk.

The runs go through the work pool, so any worker on `gridiron-pool` takes the next one; the
deployment's concurrency limit (1, ENQUEUE) queues them behind each other, and the warehouse's
concurrency limit (`flows.writer`) queues them behind a scheduled run that comes due meanwhile,
so the warehouse keeps one writer. Each run is incremental (seasons already loaded and
unchanged cost nothing), so a backfill that stops half way is started again with the same command.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from gridiron.planning import season_chunks

DEPLOYMENT = "ncaa-pipeline/backfill"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class BackfillError(RuntimeError):
    """The backfill could not start, or some of its runs did not complete."""


def backfill(first: int, last: int, chunk: int, wait: bool, poll_seconds: float = 2.0) -> Iterator[str]:
    """Start one deployment run per chunk of seasons (oldest first, each scheduled a second after
    the one before so the queue keeps that order) and say so, one line each; with `wait`, follow
    them to their end and raise `BackfillError` naming the runs that did not complete."""
    try:
        chunks = season_chunks(first, last, chunk)
    except ValueError as error:
        raise BackfillError(str(error)) from None
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(DEPLOYMENT)
        except ObjectNotFound:
            raise BackfillError(f"no deployment {DEPLOYMENT}: run `gridiron deploy` first") from None
    now = datetime.now(UTC)
    runs = []
    for index, (start, end) in enumerate(chunks):
        seasons = f"{start}" if start == end else f"{start}-{end}"
        flow_run = run_deployment(
            DEPLOYMENT, parameters={"start_year": start, "end_year": end}, timeout=0, as_subflow=False,
            scheduled_time=now + timedelta(seconds=index), flow_run_name=f"backfill-{seasons}",
            tags=["gridiron", "backfill"],
        )
        runs.append((seasons, flow_run.id))
        yield f"backfill {seasons}: run {flow_run.name} ({flow_run.id}) queued on {DEPLOYMENT}"
    if not wait:
        return
    pending, failed = dict(runs), []
    with get_client(sync_client=True) as client:
        while pending:
            for seasons, run_id in list(pending.items()):
                state = client.read_flow_run(run_id).state
                if state is not None and state.type.value in FINAL:
                    del pending[seasons]
                    yield f"backfill {seasons}: {state.name}" + (f": {state.message}" if state.message and
                                                                  state.type.value != "COMPLETED" else "")
                    if state.type.value != "COMPLETED":
                        failed.append(seasons)
            if pending:
                time.sleep(poll_seconds)
    if failed:
        raise BackfillError(f"{len(failed)} of {len(runs)} backfill runs did not complete: {', '.join(failed)}")
