"""Budget windows: which spending period a moment belongs to, and when it ends.

Time windows follow the calendar of a time zone (UTC by default): `"hour"`,
`"day"`, `"month"`. `"total"` never rolls over. `"run"` is one top-level
LangChain run (the outermost `invoke`/`stream` of a chain, agent or model); its
id is given by the caller.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal, get_args

__all__ = ["WINDOWS", "Window", "WindowSpan", "next_boundary", "window_id"]

Window = Literal["run", "hour", "day", "month", "total"]
WINDOWS: tuple[str, ...] = get_args(Window)


def _start(window: str, moment: datetime) -> datetime:
    if window == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if window == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _id(window: str, moment: datetime) -> str:
    if window == "hour":
        return moment.strftime("%Y-%m-%dT%H")
    if window == "day":
        return moment.strftime("%Y-%m-%d")
    if window == "month":
        return moment.strftime("%Y-%m")
    raise ValueError(f"not a time window: {window!r}")


def window_id(window: str, now: float, tz: tzinfo = timezone.utc) -> str:
    """The id of the time window containing `now` (epoch seconds).

    `"2026-11-03T14"` for an hour, `"2026-11-03"` for a day, `"2026-11"` for a
    month, `"total"` for the total window.
    """
    if window == "total":
        return "total"
    return _id(window, datetime.fromtimestamp(now, tz))


def next_boundary(
    window: str, now: float, tz: tzinfo = timezone.utc
) -> datetime | None:
    """When the time window containing `now` ends (`None` for run/total)."""
    if window not in ("hour", "day", "month"):
        return None
    return _end(window, _start(window, datetime.fromtimestamp(now, tz)))


class WindowSpan:
    """`window_id` of one calendar window, remembered while the clock is inside it.

    Calendar windows in a fixed-offset zone (`datetime.timezone`, UTC by
    default) span a known range of epoch seconds: inside it (a millisecond
    clear of its ends, where rounding to microseconds could tip a moment into
    the next window) the id is the one already worked out. Other zones (with
    daylight saving) and the instants near a boundary always work it out anew.

    Args:
        window: `"hour"`, `"day"`, `"month"` or `"total"`.
        tz: the time zone of the windows.
    """

    __slots__ = ("_span", "tz", "window")

    _MARGIN = 0.001

    def __init__(self, window: str, tz: tzinfo = timezone.utc) -> None:
        self.window = window
        self.tz = tz
        self._span: tuple[float, float, str] = (0.0, 0.0, "")

    def id(self, now: float) -> str:
        """`window_id(window, now, tz)`."""
        start, end, wid = self._span
        if start <= now < end:
            return wid
        if self.window == "total":
            return "total"
        moment = datetime.fromtimestamp(now, self.tz)
        wid = _id(self.window, moment)
        if type(self.tz) is timezone:  # a fixed offset: epoch ranges are exact
            first = _start(self.window, moment)
            self._span = (
                first.timestamp() + self._MARGIN,
                _end(self.window, first).timestamp() - self._MARGIN,
                wid,
            )
        return wid


def _end(window: str, start: datetime) -> datetime:
    """The end of the window that begins at `start` (hour, day or month)."""
    if window == "hour":
        return start + timedelta(hours=1)
    if window == "day":
        return (start + timedelta(days=1, hours=3)).replace(hour=0)
    year, month = (
        (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    )
    return start.replace(year=year, month=month)
