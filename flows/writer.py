"""One warehouse writer across workers: the `gridiron-warehouse` global concurrency limit.

`gridiron deploy` makes the limit (one slot). A pipeline run takes the slot before its run lock and
holds it to its end, so runs of different deployments (the scheduled one and a backfill) that come
due together on two workers queue behind each other here instead of one being refused by the run
lock. The slot is a lease that the run renews while it lives: a worker that dies frees it when the
lease runs out (`LEASE_SECONDS`, the server's minimum, plus up to 15 s until its lease sweeper
next runs), so a waiting run never gives up before `STALE_SLOT_SECONDS`. The run lock
(`gridiron.storage.runlock`) stays the backstop for runs that are not on a server with the limit
(a temporary server, the CLI, plain Python).

The slot spans the whole run, not only load: collect and process write the staging files and
caches under `storage.home` that the next phases read, so two runs on one home may not interleave.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from uuid import UUID

from gridiron.config import PipelineConfig
from gridiron.storage import RunInProgress, lock_holder

WAREHOUSE_LIMIT = "gridiron-warehouse"
LEASE_SECONDS = 60  # the shortest lease a Prefect 3.9 server grants
STALE_SLOT_SECONDS = LEASE_SECONDS + 30  # a dead holder's lease has expired and been swept by then


def ensure_warehouse_limit() -> str:
    """Create the one-slot limit if the server lacks it; one line saying which (for `gridiron deploy`)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(WAREHOUSE_LIMIT)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=WAREHOUSE_LIMIT, limit=1))
            return f"concurrency limit {WAREHOUSE_LIMIT}: created (1 slot: one warehouse writer)"
        if limit.limit == 1 and limit.active:
            return f"concurrency limit {WAREHOUSE_LIMIT}: exists"
        client.update_global_concurrency_limit(WAREHOUSE_LIMIT, GlobalConcurrencyLimitUpdate(limit=1, active=True))
        return f"concurrency limit {WAREHOUSE_LIMIT}: reset to 1 active slot (was {limit.limit}, active {limit.active})"


def _limit_exists() -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(WAREHOUSE_LIMIT).active
        except ObjectNotFound:
            return False


@contextmanager
def one_writer(config: PipelineConfig, run_id: str, logger) -> Iterator[float]:
    """Hold the warehouse slot for the block, waiting for it as long as one whole run of the holder
    (`max_pipeline_duration`) but never less than a dead holder's lease takes to lapse
    (`STALE_SLOT_SECONDS`); yields the seconds waited. Without the limit on the server (nothing
    deployed) it yields 0 at once. `RunInProgress` naming the holder when the wait runs out."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency.sync import concurrency

    if not _limit_exists():
        yield 0.0
        return
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if _is_uuid(run_id) else None
    started, patience = time.monotonic(), max(config.max_pipeline_duration, STALE_SLOT_SECONDS)
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(WAREHOUSE_LIMIT, occupy=1, timeout_seconds=patience,
                                           lease_duration=LEASE_SECONDS, holder=holder))
        except TimeoutError:
            raise RunInProgress(
                f"waited {patience:g} s (max_pipeline_duration, at least {STALE_SLOT_SECONDS} s) for the "
                f"{WAREHOUSE_LIMIT} concurrency slot, held by {_name(lock_holder(config.home))}; this run "
                "was stopped before any API call"
            ) from None
        waited = time.monotonic() - started
        if waited >= 1:
            logger.info("waited %.0f s for the %s slot (another run was writing the warehouse)",
                        waited, WAREHOUSE_LIMIT)
        yield waited


def _name(holder) -> str:
    if not holder:
        return "another pipeline run (see the limit's slots in the Prefect UI)"
    return f"flow run '{holder.get('flow_run_name') or holder.get('run_id')}' (pid {holder.get('pid')} on {holder.get('host')})"


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
