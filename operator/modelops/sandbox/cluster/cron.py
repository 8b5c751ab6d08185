"""Standard 5-field cron schedules, as Kubernetes' CronJob controller reads them (robfig/cron ParseStandard).

Our own small parser rather than `croniter`: it must match kube's rules exactly (day-of-month and
day-of-week OR-ed unless one of them starts with `*`, `a/n` meaning `a-max/n`, `7` as Sunday,
names, the `@` macros) and time zones through `zoneinfo`, and it must stay pure and table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (field name, min, max, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


class CronError(ValueError):
    """A schedule that kube's CronJob validation would reject; the message names the field."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the allowed values of each field; `dom_star`/`dow_star` for kube's OR rule."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool

    def matches(self, t: datetime) -> bool:
        """Whether the wall-clock minute `t` (in the schedule's zone) is a scheduled one."""
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime, tz: tzinfo | None = None) -> datetime | None:
        """The first scheduled minute strictly after `after` (aware datetime), in `tz`'s wall clock.

        None when no time matches within 5 years (e.g. `0 0 30 2 *`), as robfig/cron gives up.
        """
        # aware + timedelta is wall-clock arithmetic in Python: minutes step in the zone's local time
        local = after.astimezone(tz) if tz is not None else after
        t = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if t.month not in self.months:
                t = _first_of_next_month(t)
                continue
            if not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute not in self.minutes:
                t = t + timedelta(minutes=1)
                continue
            return t
        return None

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        return (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)

    def times_between(
        self, start: datetime, end: datetime, tz: tzinfo | None = None, limit: int = 101
    ) -> list[datetime]:
        """Scheduled times t with start < t <= end (at most `limit`, the earliest ones)."""
        out: list[datetime] = []
        t = self.next_after(start, tz)
        while t is not None and t <= end and len(out) < limit:
            out.append(t)
            t = self.next_after(t, tz)
        return out


def _first_of_next_month(t: datetime) -> datetime:
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=1, hour=0, minute=0)


def parse(spec: str) -> Schedule:
    """Parse a 5-field schedule or an `@` macro; CronError naming the field on bad input."""
    text = spec.strip()
    if not text:
        raise CronError("schedule: Required value")
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        raise CronError("schedule: Invalid value: cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"schedule: Invalid value: {spec!r}: unrecognized descriptor {text}")
        text = MACROS[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"schedule: Invalid value: {spec!r}: expected exactly 5 fields, found {len(fields)}")
    values: list[frozenset[int]] = []
    for raw, (fname, lo, hi, names) in zip(fields, _FIELDS, strict=True):
        values.append(frozenset(_field(raw, fname, lo, hi, names, fname == "day of week")))
    return Schedule(
        minutes=values[0],
        hours=values[1],
        days=values[2],
        months=values[3],
        weekdays=values[4],
        dom_star=fields[2].startswith(("*", "?")),
        dow_star=fields[4].startswith(("*", "?")),
    )


def _field(raw: str, fname: str, lo: int, hi: int, names: dict[str, int], weekday: bool) -> set[int]:
    out: set[int] = set()
    for part in raw.split(","):
        if not part:
            raise CronError(f"schedule: Invalid value: {raw!r}: empty list item in the {fname} field")
        range_part, _, step_part = part.partition("/")
        step = 1
        if step_part:
            if not step_part.isdigit() or int(step_part) == 0:
                raise CronError(f"schedule: Invalid value: {part!r}: bad step in the {fname} field")
            step = int(step_part)
        if range_part in ("*", "?"):
            start, end = lo, hi
        else:
            a, dash, b = range_part.partition("-")
            start = _value(a, fname, lo, hi, names, weekday)
            # robfig: "a/n" is "a-max/n"
            end = _value(b, fname, lo, hi, names, weekday) if dash else (hi if step_part else start)
            if end < start:
                raise CronError(f"schedule: Invalid value: {part!r}: beginning of range after end in the {fname} field")
        for v in range(start, end + 1, step):
            out.add(0 if weekday and v == 7 else v)
    return out


def _value(text: str, fname: str, lo: int, hi: int, names: dict[str, int], weekday: bool) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"schedule: Invalid value: {text!r}: not a number or name in the {fname} field")
    v = int(text)
    top = 7 if weekday else hi  # 7 is Sunday too
    if not lo <= v <= top:
        raise CronError(f"schedule: Invalid value: {text!r}: {fname} must be within {lo}-{top}")
    return v
