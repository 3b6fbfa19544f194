"""The pipeline's schedule from the config: a cron expression in UTC. Pure."""

from __future__ import annotations

# weekly runs on Monday (after the weekend's games); monthly on the 1st
_DAY_FIELDS = {"daily": "* * *", "weekly": "* * 1", "monthly": "1 * *"}


def cron_for(schedule_interval: str, schedule_time: str) -> str:
    """`daily` + `06:00` -> `0 6 * * *`; `weekly` -> Mondays; `monthly` -> the 1st (all UTC)."""
    if schedule_interval not in _DAY_FIELDS:
        raise ValueError(f"schedule_interval must be daily, weekly or monthly, not {schedule_interval!r}")
    hour, minute = (int(part) for part in schedule_time.split(":"))
    if _DAY_FIELDS[schedule_interval] == "* * *":
        return f"{minute} {hour} * * *"
    day_of_month, month, day_of_week = _DAY_FIELDS[schedule_interval].split()
    return f"{minute} {hour} {day_of_month} {month} {day_of_week}"
