"""The pipeline's clock: what "now" is for planning fetches, judging staleness, stamping what was
fetched and deciding which games are still to kick off. It is the wall clock, unless
`GRIDIRON_AS_OF` sets an as-of time (an ISO 8601 time; UTC when it names no zone): a season
replayed week by week (`bench/season_replay.py`) runs the pipeline as it would have run then.
Run records (when a run started, how long it took, backups) always use the wall clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime

AS_OF_VARIABLE = "GRIDIRON_AS_OF"


class ClockError(ValueError):
    """`GRIDIRON_AS_OF` is set to something that is not a time."""


def as_of_override() -> datetime | None:
    """The as-of time `GRIDIRON_AS_OF` sets (None: not set, the wall clock rules)."""
    value = os.environ.get(AS_OF_VARIABLE, "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ClockError(f"{AS_OF_VARIABLE}={value!r} is not an ISO 8601 time (e.g. 2023-10-16T06:00:00Z); "
                         "unset it to run on the wall clock") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def now() -> datetime:
    """The pipeline's now, in UTC: the as-of time when one is set, else the wall clock."""
    return as_of_override() or datetime.now(UTC)
