"""Budget windows: which spending period a moment belongs to, and when it ends.

Time windows follow the calendar of a time zone (UTC by default): `"hour"`,
`"day"`, `"month"`. `"total"` never rolls over. `"run"` is one top-level
LangChain run (the outermost `invoke`/`stream` of a chain, agent or model); its
id is given by the caller.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal, get_args

__all__ = ["WINDOWS", "Window", "next_boundary", "window_id"]

Window = Literal["run", "hour", "day", "month", "total"]
WINDOWS: tuple[str, ...] = get_args(Window)


def _start(window: str, moment: datetime) -> datetime:
    if window == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if window == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def window_id(window: str, now: float, tz: tzinfo = timezone.utc) -> str:
    """The id of the time window containing `now` (epoch seconds).

    `"2026-11-03T14"` for an hour, `"2026-11-03"` for a day, `"2026-11"` for a
    month, `"total"` for the total window.
    """
    if window == "total":
        return "total"
    moment = datetime.fromtimestamp(now, tz)
    if window == "hour":
        return moment.strftime("%Y-%m-%dT%H")
    if window == "day":
        return moment.strftime("%Y-%m-%d")
    if window == "month":
        return moment.strftime("%Y-%m")
    raise ValueError(f"not a time window: {window!r}")


def next_boundary(
    window: str, now: float, tz: tzinfo = timezone.utc
) -> datetime | None:
    """When the time window containing `now` ends (`None` for run/total)."""
    if window not in ("hour", "day", "month"):
        return None
    start = _start(window, datetime.fromtimestamp(now, tz))
    if window == "hour":
        return start + timedelta(hours=1)
    if window == "day":
        return (start + timedelta(days=1, hours=3)).replace(hour=0)
    year, month = (
        (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    )
    return start.replace(year=year, month=month)
