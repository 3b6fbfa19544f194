"""The phases' subflows: Prefect flows whose runs record a summary of their inputs, not the inputs.

A phase is handed the results of the phases before it (every partition of the run, with its
paths and checksums), and Prefect stores a flow run's parameters on the server: in full that is
about 18 KB a season, over the server's default 512 KB limit (`PREFECT_SERVER_API_MAX_PARAMETER_SIZE`)
at about 27 seasons, and a lot to write and show for every run. The phase's function still gets
the values themselves (they never leave this process); only their record is a summary
(`gridiron.results.flow_run_summary`: counts and the first few keys).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import Flow

from gridiron.results import flow_run_summary


class PhaseFlow(Flow):
    """A `prefect.Flow` whose runs record `flow_run_summary` of each parameter."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Each parameter as its `flow_run_summary`, so a flow run's inputs stay small."""
        return super().serialize_parameters({name: flow_run_summary(value) for name, value in parameters.items()})

    def with_options(self, **options: Any) -> PhaseFlow:
        # Prefect's Flow.with_options builds a plain Flow: keep the copy a PhaseFlow
        """A copy with new options that is still a PhaseFlow."""
        copy = super().with_options(**options)
        copy.__class__ = PhaseFlow
        return copy


def phase(name: str) -> Callable[[Callable[..., Any]], PhaseFlow]:
    """`@phase("collect")`: the subflow of one phase of `ncaa-pipeline` (in place of `@flow`)."""
    return lambda fn: PhaseFlow(fn=fn, name=name)
