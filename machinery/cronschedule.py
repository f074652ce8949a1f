"""Cron schedules as Kubernetes reads them (robfig/cron v3 ``ParseStandard``), pure; shared by the
CronJob strategy (validation) and the CronJob controller (the next run), hence in machinery.

Five fields, minute hour day-of-month month day-of-week, each ``*``/``?``, numbers, names
(JAN-DEC, SUN-SAT), ranges ``a-b``, steps ``*/n``, ``a-b/n``, ``a/n`` and lists ``a,b``; the
descriptors ``@yearly @annually @monthly @weekly @daily @midnight @hourly``. Day-of-month and
day-of-week are OR-ed unless one of them is ``*``/``?`` (cron's rule). ``TZ=``/``CRON_TZ=``
prefixes are refused here, as the API server refuses them (the ``timeZone`` field says where a
schedule runs; ``zone()`` resolves it with zoneinfo).

Data flow: text -> ``parse`` -> ``Schedule`` (sets of allowed values) -> ``next_after(t)`` (the
first matching minute after ``t``, in the schedule's zone) / ``most_recent(earliest, now)`` (the
last matching minute in (earliest, now] and how many were missed) for the CronJob plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {n: i + 1 for i, n in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                          "nov", "dec"))}
DAYS = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
               "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, MONTHS), (0, 6, DAYS))
_YEARS_AHEAD = 5


class ScheduleError(ValueError):
    """Not a schedule; the message is robfig/cron's."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool

    def day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: datetime) -> datetime | None:
        """The first matching minute strictly after ``t`` (aware), in ``t``'s zone; None if none within 5 years."""
        zone = t.tzinfo
        wall = t.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = wall.year + _YEARS_AHEAD
        while wall.year <= limit:
            if wall.month not in self.months:
                wall = (wall.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self.day_matches(wall):
                wall = wall.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if wall.hour not in self.hours:
                wall = wall.replace(minute=0) + timedelta(hours=1)
                continue
            if wall.minute not in self.minutes:
                wall += timedelta(minutes=1)
                continue
            return wall.replace(tzinfo=zone)
        return None

    def most_recent(self, earliest: datetime, now: datetime) -> tuple[datetime | None, int]:
        """(the last matching time in (earliest, now], how many matched) -- ``mostRecentScheduleTime``."""
        found: datetime | None = None
        missed = 0
        t = self.next_after(earliest)
        while t is not None and t <= now:
            found = t
            missed += 1
            if missed > 1000:  # Kubernetes stops counting long before; keep the last one only
                t = self.next_after(max(t, now - timedelta(days=366)))
                continue
            t = self.next_after(t)
        return found, missed


def _number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit() or not text.isascii():
        raise ScheduleError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        range_part, slash, step_text = part.partition("/")
        low_high = range_part.split("-")
        step = 1
        if low_high[0] in ("*", "?"):
            start, end, is_star = lo, hi, True
        else:
            start = _number(low_high[0], names)
            if len(low_high) == 1:
                end = hi if slash else start
            elif len(low_high) == 2:
                end = _number(low_high[1], names)
            else:
                raise ScheduleError(f"too many hyphens: {part}")
            is_star = False
        if slash:
            step = _number(step_text, {})
            if step == 0:
                raise ScheduleError(f"step of range should be a positive number: {part}")
        if start < lo:
            raise ScheduleError(f"beginning of range ({start}) below minimum ({lo}): {part}")
        if end > hi:
            raise ScheduleError(f"end of range ({end}) above maximum ({hi}): {part}")
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        values.update(range(start, end + 1, step))
        star = star or (is_star and step == 1)
    return frozenset(values), star


def parse(text: str) -> Schedule:
    """A standard five-field schedule or descriptor; ``ScheduleError`` with robfig's message otherwise."""
    spec = text.strip()
    if not spec:
        raise ScheduleError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if spec.startswith("@"):
        if spec not in DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    parsed = [_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _BOUNDS)]
    return Schedule(minutes=parsed[0][0], hours=parsed[1][0], days=parsed[2][0], months=parsed[3][0],
                    weekdays=parsed[4][0], days_star=parsed[2][1], weekdays_star=parsed[4][1])


def zone(name: str | None, default: tzinfo = timezone.utc) -> tzinfo:
    """The zone of a CronJob's ``timeZone`` (None: ``default``, the controller's); ``ScheduleError`` if unknown."""
    if name is None:
        return default
    if not name or name.startswith("/") or ".." in name or name.lower() == "local":
        raise ScheduleError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name}") from None
