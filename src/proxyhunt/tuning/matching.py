"""Pick the rclone process that most likely made a proxy request.

A process is a candidate when it ran on the request's client host and started
before the request, within the correlation window. ``clock_skew`` widens both
ends, because the proxy's and the endpoint's clocks differ. A process that
ended (Sysmon 5, Security 4689) before the request is ruled out, and so is one
whose ``--user-agent`` differs from the request's user agent, because rclone
sends that value on every request.

Candidates are ranked by evidence in the request. The evidence is the
process's ``--user-agent`` value (or rclone's default user agent when none is
set), its destination bucket in the host name or URL path, a host named in its
flags (``--s3-endpoint``, ``--webdav-url``), and the proxy user. When two
candidates tie on evidence, the request is *ambiguous*: no process is
assigned, so exclusions that test process fields cannot suppress it. The start
time never breaks a tie, because a long backup and a short exfiltration may
overlap.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from proxyhunt.process.event import ProcessExit
from proxyhunt.process.recognize import RcloneProcess
from proxyhunt.tuning.durations import format_duration
from proxyhunt.tuning.hosts import HostDirectory, HostLookup, host_key

FOUND = "found"
NOT_FOUND = "not found"
AMBIGUOUS = "ambiguous"

DEFAULT_WINDOW = timedelta(hours=12)
DEFAULT_CLOCK_SKEW = timedelta(minutes=2)

# Processes logged twice (Sysmon 1 and Security 4688 for the same start) are one
# process when host, pid and command line agree and the starts are this close.
_DUPLICATE_START = timedelta(seconds=2)


@dataclass(frozen=True)
class CorrelationSettings:
    """How far before a request a process may have started, and how far the clocks may disagree."""

    window: timedelta = DEFAULT_WINDOW
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW


@dataclass(frozen=True)
class ProxyRequest:
    """The fields of a finding that correlation reads."""

    time: datetime | None
    src_ip: str | None
    src_hostname: str | None
    src_username: str | None
    dst_hostname: str | None
    url_path: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Match:
    """The outcome for one request: the status, the reason an auditor reads, and the process when found."""

    status: str
    reason: str
    process: RcloneProcess | None = None

    @property
    def text(self) -> str:
        """The ``ProcessMatch`` column: the status followed by its reason."""
        return f"{self.status}: {self.reason}"


@dataclass
class ProcessIndex:
    """rclone processes by host, with the process exits and host addresses that correlation needs."""

    by_host: dict[str, list[RcloneProcess]] = field(default_factory=lambda: defaultdict(list))
    exits: dict[tuple[str, object], list[datetime]] = field(default_factory=lambda: defaultdict(list))
    hosts: HostDirectory = field(default_factory=HostDirectory)
    without_host: int = 0
    # Start times per host, in the order of by_host, for finding a window by bisection.
    start_times: dict[str, list[datetime]] = field(default_factory=dict)

    @classmethod
    def build(cls, processes: list[RcloneProcess], exits: list[ProcessExit], hosts: HostDirectory) -> ProcessIndex:
        index = cls(hosts=hosts)
        for process in _unique(processes):
            key = host_key(process.event.hostname)
            if key is None:
                index.without_host += 1
                continue
            index.by_host[key].append(process)
        for host_processes in index.by_host.values():
            host_processes.sort(key=lambda process: process.event.time)
        index.start_times = {host: [process.event.time for process in processes]
                             for host, processes in index.by_host.items()}
        for ended in exits:
            key = host_key(ended.hostname)
            if key is None:
                continue
            identity = ended.process_guid.lower() if ended.process_guid else ended.process_id
            index.exits[(key, identity)].append(ended.time)
        return index

    def started_between(self, host: str, earliest: datetime, latest: datetime) -> list[RcloneProcess]:
        """Return the processes on ``host`` that started from ``earliest`` to ``latest``, both included."""
        times = self.start_times.get(host, [])
        return self.by_host[host][bisect_left(times, earliest) : bisect_right(times, latest)] if times else []

    def exit_time(self, host: str, process: RcloneProcess) -> datetime | None:
        """Return the first exit of ``process`` after its start, by ProcessGuid or else by process id."""
        event = process.event
        identities = [event.process_guid.lower()] if event.process_guid else []
        identities.append(event.process_id)
        for identity in identities:
            times = [time for time in self.exits.get((host, identity), []) if time >= event.time]
            if times:
                return min(times)
        return None


def _unique(processes: list[RcloneProcess]) -> list[RcloneProcess]:
    """Drop second records of one process start, keeping the first (Sysmon's, when read first)."""
    kept: list[RcloneProcess] = []
    seen: dict[tuple[str | None, int | None, str | None], list[datetime]] = defaultdict(list)
    for process in processes:
        event = process.event
        identity = (host_key(event.hostname), event.process_id, (event.command_line or "").strip())
        if event.process_id is not None and any(abs(event.time - time) <= _DUPLICATE_START for time in seen[identity]):
            continue
        seen[identity].append(event.time)
        kept.append(process)
    return kept


def match_request(request: ProxyRequest, index: ProcessIndex, settings: CorrelationSettings) -> Match:
    """Return the rclone process that most likely made ``request``, or why none is assigned."""
    if request.time is None:
        return Match(NOT_FOUND, "the proxy event has no time")
    lookup = index.hosts.lookup(request.src_hostname, request.src_ip)
    if not lookup.keys:
        return Match(NOT_FOUND, _unknown_host(request))

    earliest = request.time - settings.window - settings.clock_skew
    latest = request.time + settings.clock_skew
    candidates: list[tuple[int, list[str], RcloneProcess]] = []
    ruled_out: list[str] = []
    for host in lookup.keys:
        for process in index.started_between(host, earliest, latest):
            ended = index.exit_time(host, process)
            if ended is not None and ended < request.time - settings.clock_skew:
                ruled_out.append(f"pid {process.event.process_id} ended at {ended:%Y-%m-%d %H:%M:%S}")
                continue
            score, evidence, conflict = _evidence(request, process)
            if conflict:
                ruled_out.append(f"pid {process.event.process_id} {conflict}")
                continue
            candidates.append((score, evidence, process))

    if not candidates:
        return Match(NOT_FOUND, _none_in_window(request, lookup, earliest, latest, ruled_out))

    candidates.sort(key=lambda item: (-item[0], item[2].event.time))
    best_score, evidence, best = candidates[0]
    rivals = [process for score, _, process in candidates[1:] if score == best_score]
    if rivals:
        return Match(AMBIGUOUS, _ambiguous(request, lookup, [best, *rivals]))
    return Match(FOUND, _found(request, lookup, best, evidence, len(candidates), ruled_out), best)


def _evidence(request: ProxyRequest, process: RcloneProcess) -> tuple[int, list[str], str | None]:
    """Score how well the request fits the process; the third value is why the process cannot have made it."""
    command = process.command
    score = 0
    evidence: list[str] = []

    agent = (request.user_agent or "").strip()
    override = command.user_agent
    if agent.lower().startswith("go-http-client/"):
        # Go's net/http writes its default user agent on a CONNECT to the proxy
        # unless the program sets a proxy CONNECT header, so it gives no evidence
        # about the --user-agent of the requests inside the tunnel.
        agent = ""
    if override and agent:
        if agent.lower() != override.strip().lower():
            return 0, [], f"sets --user-agent '{override}', which differs from the request's user agent"
        score += 2
        evidence.append("its --user-agent is the request's user agent")
    elif agent.lower().startswith("rclone/") and not override:
        score += 1
        evidence.append("the request carries rclone's default user agent and the process sets no other")

    host = (request.dst_hostname or "").lower()
    first_segment = (request.url_path or "").lstrip("/").split("/", 1)[0].lower()
    for endpoint in (command.destination, command.source):
        bucket = (endpoint.bucket or "").lower() if endpoint else ""
        if bucket and (bucket == first_segment or host.startswith(bucket + ".")):
            score += 2
            evidence.append(f"bucket '{endpoint.bucket}' of {endpoint.raw} appears in the request")
            break
    if host:
        for flag in command.flags:
            if flag.value and host in flag.value.lower():
                score += 2
                evidence.append(f"the request's host appears in {flag.name}")
                break

    user = _account_name(request.src_username)
    if user and user == _account_name(process.event.user):
        score += 1
        evidence.append("the proxy user is the process user")
    return score, evidence, None


def _account_name(name: str | None) -> str:
    """Return the account part of ``DOMAIN\\user`` or ``user@domain``, lower-cased."""
    if not name:
        return ""
    return name.rsplit("\\", 1)[-1].split("@", 1)[0].strip().lower()


def _describe(process: RcloneProcess) -> str:
    event = process.event
    return (
        f"pid {event.process_id} on {event.hostname} started {event.time:%Y-%m-%d %H:%M:%S} "
        f"({event.source_kind}, {event.source_file}:{event.source_line})"
    )


def _unknown_host(request: ProxyRequest) -> str:
    if request.src_hostname or request.src_ip:
        client = " / ".join(value for value in (request.src_hostname, request.src_ip) if value)
        return (
            f"no process log or asset entry names the client host ({client}); add its host name and address "
            "with --assets, or process logs that record its address (Sysmon 3, ASIM DvcIpAddr)"
        )
    return "the proxy event names no client (SrcHostname and SrcIpAddr are empty)"


def _none_in_window(request: ProxyRequest, lookup: HostLookup, earliest: datetime, latest: datetime,
                    ruled_out: list[str]) -> str:
    reason = (
        f"no rclone process on {lookup.describe()} started between {earliest:%Y-%m-%d %H:%M:%S} "
        f"and {latest:%Y-%m-%d %H:%M:%S}"
    )
    if ruled_out:
        reason += "; ruled out: " + "; ".join(ruled_out)
    return reason


def _ambiguous(request: ProxyRequest, lookup: HostLookup, processes: list[RcloneProcess]) -> str:
    listed = "; ".join(_describe(process) for process in processes)
    return (
        f"{len(processes)} rclone processes on {lookup.describe()} fit this request equally well ({listed}); "
        "none is assigned, so exclusions that test process fields do not apply"
    )


def _found(request: ProxyRequest, lookup: HostLookup, process: RcloneProcess, evidence: list[str],
           candidates: int, ruled_out: list[str]) -> str:
    event = process.event
    host = host_key(event.hostname) or ""
    lead = request.time - event.time
    if lead >= timedelta(0):
        timing = f"{format_duration(lead)} before the request"
    else:
        timing = f"{format_duration(-lead)} after the request, within the clock skew"
    parts = [
        _describe(process),
        timing,
        f"host matched by {lookup.keys.get(host, 'host name')}",
        f"rclone recognized by {process.recognized_by}",
    ]
    if evidence:
        parts.append("evidence: " + ", ".join(evidence))
    if candidates > 1:
        parts.append(f"chosen over {candidates - 1} other rclone process(es) on the evidence")
    if ruled_out:
        parts.append("ruled out: " + ", ".join(ruled_out))
    return "; ".join(parts)
