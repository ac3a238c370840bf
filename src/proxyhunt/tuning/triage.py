"""Triage priority: how urgently a finding should be looked at, from its rule's level and its context.

Each finding starts at its rule's Sigma level (informational, low, medium,
high, critical) and each adjustment that applies moves it one step:

- up, for a source (``SrcIpAddr`` or ``SrcHostname``) in ``%server_sources%``,
  because servers hold the data worth taking;
- up, for an event outside ``--working-hours``; a correlation finding counts
  as outside unless its whole window lies within one stretch of working hours;
- down, for a source in ``%known_backup_sources%``.

The priority never goes above critical or below informational. Every
adjustment names itself in ``PriorityReasons``, so an analyst can see why a
finding ranks where it does. A development or beta rclone build is no
adjustment: the bundled rule for it carries level high itself, so that the
level is the same where the rule runs in a SIEM, and a second step here
would count the build twice. List values are Sigma strings, as in a rule's
``|expand`` placeholder: ``*`` and ``?`` are wildcards, ``\\`` escapes them, and
matching ignores case. A value in CIDR notation (``10.70.4.0/24``,
``2001:db8::/32``) is a network instead, matched against ``SrcIpAddr`` only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sigma.exceptions import SigmaError
from sigma.types import SigmaString, SpecialChars

PRIORITIES = ("informational", "low", "medium", "high", "critical")
# A finding whose rule has no level, or one that is not a Sigma level, starts here.
DEFAULT_PRIORITY = "medium"

SERVER_SOURCES = "server_sources"
KNOWN_BACKUP_SOURCES = "known_backup_sources"

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})$")
_WORKING_HOURS_EXAMPLE = "'Mon-Fri 07:00-19:00 Europe/Berlin'"


class WorkingHoursError(ValueError):
    """A ``--working-hours`` value that cannot be read; the message names the part at fault and the fix."""


@dataclass(frozen=True)
class WorkingHours:
    """The weekly working hours of a site: days, a daily time range and the time zone they are in.

    ``end`` at or before ``start`` is a range across midnight (a night shift
    22:00-06:00), which belongs to the day it starts on. ``end`` of None is
    24:00, the end of the day.
    """

    days: frozenset[int]
    start: time
    end: time | None
    zone: ZoneInfo
    spec: str

    @property
    def overnight(self) -> bool:
        return self.end is not None and self.end <= self.start

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` (UTC when it has no zone) lies within working hours."""
        return self._stretch_end(moment) is not None

    def covers(self, start: datetime, end: datetime) -> bool:
        """True when the whole range from ``start`` to ``end`` lies within working hours, without a break."""
        moment = _as_utc(start)
        last = _as_utc(end)
        # Back-to-back stretches (Mon-Sun 00:00-24:00) continue each other, so
        # the range is followed stretch by stretch; a year of days is enough.
        for _ in range(400):
            stretch_end = self._stretch_end(moment)
            if stretch_end is None:
                return False
            if last < stretch_end:
                return True
            moment = stretch_end
        return True

    def _stretch_end(self, moment: datetime) -> datetime | None:
        """Return the UTC end of the stretch of working hours that contains ``moment``, or None outside them."""
        local = _as_utc(moment).astimezone(self.zone)
        today = local.date()
        clock = local.time().replace(tzinfo=None)
        if self.overnight:
            assert self.end is not None
            if today.weekday() in self.days and clock >= self.start:
                return self._utc(today + timedelta(days=1), self.end)
            yesterday = today - timedelta(days=1)
            if yesterday.weekday() in self.days and clock < self.end:
                return self._utc(today, self.end)
            return None
        if today.weekday() not in self.days or clock < self.start:
            return None
        if self.end is None:
            return self._utc(today + timedelta(days=1), time(0))
        return self._utc(today, self.end) if clock < self.end else None

    def _utc(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(timezone.utc)

    def local_text(self, moment: datetime) -> str:
        """Return ``moment`` as a weekday and clock time in the working hours' zone, such as ``Sat 03:12``."""
        local = _as_utc(moment).astimezone(self.zone)
        return f"{_DAY_NAMES[local.weekday()].title()} {local:%H:%M}"


def _as_utc(moment: datetime) -> datetime:
    # WebSession times are UTC without a zone attached.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_working_hours(spec: str) -> WorkingHours:
    """Read a working-hours value such as ``Mon-Fri 07:00-19:00 Europe/Berlin``; raise WorkingHoursError.

    The value is days, a time range and an optional IANA time zone (default
    UTC). Days are names (``Mon`` or ``Monday``), ranges (``Mon-Fri``,
    ``Sun-Thu``) or both, separated by commas (``Mon-Thu,Sat``). Times are
    24-hour ``HH:MM``; ``24:00`` ends at midnight, and an end at or before the
    start runs across midnight.
    """
    parts = spec.split()
    if len(parts) not in (2, 3):
        raise WorkingHoursError(
            f"invalid working hours '{spec}': give days, a time range and optionally a time zone, "
            f"such as {_WORKING_HOURS_EXAMPLE}"
        )
    days = _parse_days(parts[0])
    start, end = _parse_time_range(parts[1])
    zone = _parse_zone(parts[2]) if len(parts) == 3 else ZoneInfo("UTC")
    return WorkingHours(days, start, end, zone, " ".join(parts))


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        first, _, last = item.partition("-")
        start = _day_number(first)
        stop = _day_number(last) if last else start
        # A range may wrap over the weekend, as Fri-Mon or Sun-Thu do.
        span = (stop - start) % 7
        days.update((start + offset) % 7 for offset in range(span + 1))
    return frozenset(days)


def _day_number(name: str) -> int:
    key = name.strip().lower()
    if key in _DAY_NAMES:
        return _DAY_NAMES.index(key)
    if key in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(key)
    raise WorkingHoursError(
        f"invalid day '{name}' in working hours: use Mon, Tue, Wed, Thu, Fri, Sat or Sun, "
        f"ranges such as Mon-Fri, and commas, as in {_WORKING_HOURS_EXAMPLE}"
    )


def _parse_time_range(text: str) -> tuple[time, time | None]:
    first, separator, last = text.partition("-")
    if not separator:
        raise WorkingHoursError(f"invalid time range '{text}' in working hours: write it as HH:MM-HH:MM, such as 07:00-19:00")
    start = _parse_clock(first)
    end = _parse_clock(last)
    if start is None:
        raise WorkingHoursError(f"invalid start time '{first}' in working hours: 24:00 can only end a range")
    if end == start:
        raise WorkingHoursError(
            f"invalid time range '{text}' in working hours: it starts where it ends; "
            "for whole days write 00:00-24:00"
        )
    return start, end


def _parse_clock(text: str) -> time | None:
    """Return a ``HH:MM`` time; None stands for 24:00."""
    match = _CLOCK.match(text)
    hour = int(match["hour"]) if match else -1
    minute = int(match["minute"]) if match else -1
    if hour == 24 and minute == 0:
        return None
    if not 0 <= hour <= 23 or not 0 <= minute <= 59:
        raise WorkingHoursError(f"invalid time '{text}' in working hours: write 24-hour HH:MM, such as 07:00 or 19:30")
    return time(hour, minute)


def _parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WorkingHoursError(
            f"unknown time zone '{name}' in working hours: give an IANA time zone such as Europe/Berlin, "
            "America/New_York or UTC"
        ) from None


@dataclass(frozen=True)
class SourceList:
    """The values of one placeholder list, matched against a finding's SrcIpAddr and SrcHostname.

    A value in CIDR notation (IPv4 or IPv6) is kept in ``networks`` and matched
    against SrcIpAddr only. Every other value is a Sigma string in
    ``patterns``, matched against both columns.
    """

    name: str
    values: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, name: str, values: Iterable[str]) -> SourceList:
        """Return the list ``name`` with each value read as a network or a Sigma string; an invalid value raises ValueError."""
        values = tuple(values)
        networks = []
        patterns = []
        for value in values:
            network = _cidr_network(name, value)
            if network is not None:
                networks.append(network)
            else:
                patterns.append(_sigma_string_pattern(name, value))
        return cls(name, values, tuple(patterns), tuple(networks))

    def match(self, finding: dict[str, Any]) -> str | None:
        """Return the finding's source address or host name that the list contains, or None."""
        address = _ip_address(finding.get("SrcIpAddr"))
        if address is not None and any(address in network for network in self.networks):
            return str(finding["SrcIpAddr"])

        for column in ("SrcIpAddr", "SrcHostname"):
            value = finding.get(column)
            if value is None:
                continue
            text = str(value)
            if any(pattern.fullmatch(text) for pattern in self.patterns):
                return text
        return None


def _cidr_network(name: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Return the network that ``value`` writes in CIDR notation, or None when it is no CIDR value.

    Only a value with a ``/`` and an address before it counts, so host names
    and wildcard strings stay Sigma strings. Host bits set after the prefix
    (``10.70.4.1/24``) raise ValueError, because the intended network is unclear.
    """
    text = value.strip()
    address, separator, _ = text.partition("/")
    if not separator or _ip_address(address) is None:
        return None
    try:
        return ipaddress.ip_network(text)
    except ValueError as error:
        raise ValueError(
            f"value '{value}' of list '{name}' is not a valid CIDR network: {error}; "
            "write the network address, such as 10.70.4.0/24 or 2001:db8::/32"
        ) from None


def _ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if value is None:
        return None
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


def _sigma_string_pattern(name: str, value: str) -> re.Pattern[str]:
    """Return a regular expression that matches exactly what the Sigma string ``value`` matches, ignoring case."""
    try:
        parts = SigmaString(value).s
    except SigmaError as error:
        raise ValueError(f"value '{value}' of list '{name}' is not a valid Sigma string: {error}") from None
    pieces = []
    for part in parts:
        if part == SpecialChars.WILDCARD_MULTI:
            pieces.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            pieces.append(".")
        else:
            pieces.append(re.escape(str(part)))
    return re.compile("".join(pieces), re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class TriageSettings:
    """The inputs of the adjustments: the two source lists, and the working hours when given."""

    server_sources: SourceList = field(default_factory=lambda: SourceList(SERVER_SOURCES))
    known_backup_sources: SourceList = field(default_factory=lambda: SourceList(KNOWN_BACKUP_SOURCES))
    working_hours: WorkingHours | None = None

    @classmethod
    def from_lists(cls, lists: Any, working_hours: WorkingHours | None = None) -> TriageSettings:
        """Return settings from placeholder lists (anything with ``get(name)``, such as PlaceholderLists)."""
        get = (lambda name: ()) if lists is None else lists.get
        return cls(
            SourceList.of(SERVER_SOURCES, get(SERVER_SOURCES)),
            SourceList.of(KNOWN_BACKUP_SOURCES, get(KNOWN_BACKUP_SOURCES)),
            working_hours,
        )


class Adjustment:
    """One documented reason to move a finding's priority by ``step`` levels."""

    step: ClassVar[int] = 0

    def reason(self, finding: dict[str, Any], settings: TriageSettings) -> str | None:
        """Return why the adjustment applies to ``finding``, or None when it does not."""
        raise NotImplementedError


class ServerSource(Adjustment):
    """Raise a finding whose source is listed in ``%server_sources%``."""

    step = 1

    def reason(self, finding: dict[str, Any], settings: TriageSettings) -> str | None:
        source = settings.server_sources.match(finding)
        return f"+1 source {source} is in {SERVER_SOURCES}" if source else None


class OutsideWorkingHours(Adjustment):
    """Raise a finding whose event, or correlation window, lies outside the working hours."""

    step = 1

    def reason(self, finding: dict[str, Any], settings: TriageSettings) -> str | None:
        hours = settings.working_hours
        if hours is None:
            return None
        moment = finding.get("TimeGenerated")
        if isinstance(moment, datetime):
            if hours.contains(moment):
                return None
            return f"+1 at {hours.local_text(moment)}, outside working hours {hours.spec}"
        start, end = finding.get("WindowStart"), finding.get("WindowEnd")
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            return None
        if hours.covers(start, end):
            return None
        return f"+1 window {hours.local_text(start)} to {hours.local_text(end)} reaches outside working hours {hours.spec}"


class KnownBackupSource(Adjustment):
    """Lower a finding whose source is listed in ``%known_backup_sources%``."""

    step = -1

    def reason(self, finding: dict[str, Any], settings: TriageSettings) -> str | None:
        source = settings.known_backup_sources.match(finding)
        return f"-1 source {source} is in {KNOWN_BACKUP_SOURCES}" if source else None


ADJUSTMENTS: tuple[Adjustment, ...] = (ServerSource(), OutsideWorkingHours(), KnownBackupSource())


@dataclass(frozen=True)
class Triage:
    """A finding's priority and the reasons for it, the rule's level first."""

    priority: str
    reasons: tuple[str, ...]


def triage_finding(
    finding: dict[str, Any], settings: TriageSettings, adjustments: Sequence[Adjustment] = ADJUSTMENTS
) -> Triage:
    """Return the priority of one finding: its rule's level moved by every adjustment that applies."""
    level = str(finding.get("RuleLevel") or "").lower()
    if level in PRIORITIES:
        reasons = [f"rule level {level}"]
        rank = PRIORITIES.index(level)
    else:
        reasons = [f"rule has no Sigma level; {DEFAULT_PRIORITY} assumed"]
        rank = PRIORITIES.index(DEFAULT_PRIORITY)

    for adjustment in adjustments:
        reason = adjustment.reason(finding, settings)
        if reason is not None:
            reasons.append(reason)
            rank += adjustment.step

    if rank > len(PRIORITIES) - 1:
        reasons.append(f"kept at {PRIORITIES[-1]}, the highest priority")
    elif rank < 0:
        reasons.append(f"kept at {PRIORITIES[0]}, the lowest priority")
    rank = min(max(rank, 0), len(PRIORITIES) - 1)
    return Triage(PRIORITIES[rank], tuple(reasons))


def apply_triage(findings: Iterable[dict[str, Any]], settings: TriageSettings) -> None:
    """Set ``Priority`` and ``PriorityReasons`` on every finding, alerts and suppressed ones alike."""
    for finding in findings:
        triage = triage_finding(finding, settings)
        finding["Priority"] = triage.priority
        finding["PriorityReasons"] = list(triage.reasons)


def priority_rank(finding: dict[str, Any]) -> int:
    """Return the rank of a finding's priority, 0 for informational to 4 for critical; -1 without one."""
    priority = finding.get("Priority")
    return PRIORITIES.index(priority) if priority in PRIORITIES else -1


def triage_order(findings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return findings by priority, highest first, then by time (a correlation's window start), then by line."""

    def key(finding: dict[str, Any]) -> tuple:
        moment = finding.get("TimeGenerated") or finding.get("WindowStart")
        timestamp = _as_utc(moment).timestamp() if isinstance(moment, datetime) else float("inf")
        return (-priority_rank(finding), timestamp, str(finding.get("SourceFile") or ""), finding.get("SourceLine") or 0)

    return sorted(findings, key=key)
