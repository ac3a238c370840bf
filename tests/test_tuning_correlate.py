"""Correlation of proxy hits with rclone processes: host, time window, clock skew, evidence and ambiguity."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from proxyhunt.hunt import hunt
from proxyhunt.process.event import HostAddress, ProcessEvent, ProcessExit
from proxyhunt.process.recognize import recognize_rclone
from proxyhunt.tuning.durations import parse_duration
from proxyhunt.tuning.hosts import AssetFileError, HostDirectory, host_key, load_assets
from proxyhunt.tuning.matching import (
    AMBIGUOUS,
    FOUND,
    NOT_FOUND,
    CorrelationSettings,
    ProcessIndex,
    ProxyRequest,
    match_request,
)

SAMPLES = Path(__file__).parents[1] / "examples" / "process"
REQUEST_TIME = datetime(2026, 11, 20, 2, 0, 0)
SETTINGS = CorrelationSettings(window=timedelta(hours=12), clock_skew=timedelta(minutes=2))


def rclone(command_line: str, started: datetime, host: str = "WS01.corp.example.com", pid: int = 100,
           image: str = r"C:\Tools\rclone.exe", original: str | None = "rclone.exe", user: str = "CORP\\alice",
           guid: str | None = None):
    event = ProcessEvent(
        time=started, hostname=host, process_id=pid, command_line=command_line, image=image,
        original_file_name=original, user=user, parent_image=None, source_file="sysmon.xml", source_line=pid,
        source_kind="Sysmon 1", process_guid=guid,
    )
    process = recognize_rclone(event)
    assert process is not None
    return process


def request(src_ip: str | None = "10.0.0.5", src_hostname: str | None = None, dst: str = "bucket.s3.example.com",
            path: str = "/key", agent: str = "rclone/v1.66.0", user: str | None = None,
            time: datetime = REQUEST_TIME) -> ProxyRequest:
    return ProxyRequest(time, src_ip, src_hostname, user, dst, path, agent)


def index(*processes, addresses=(("WS01.corp.example.com", "10.0.0.5"),), exits=()):
    hosts = HostDirectory()
    for hostname, ip in addresses:
        hosts.add(hostname, ip, "test")
    return ProcessIndex.build(list(processes), list(exits), hosts)


def test_match_by_address_through_host_directory():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(minutes=5))
    match = match_request(request(), index(process), SETTINGS)
    assert match.status == FOUND
    assert match.process is process
    assert "host matched by SrcIpAddr 10.0.0.5 through test" in match.reason
    assert "bucket 'bucket' of s3:bucket/y appears in the request" in match.reason
    assert "5m00s before the request" in match.reason


def test_match_by_short_host_name():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(minutes=5))
    match = match_request(request(src_ip=None, src_hostname="ws01"), index(process, addresses=()), SETTINGS)
    assert match.status == FOUND
    assert "host matched by SrcHostname ws01" in match.reason


def test_no_process_on_unknown_host():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(minutes=5))
    match = match_request(request(src_ip="10.9.9.9"), index(process), SETTINGS)
    assert match.status == NOT_FOUND
    assert match.process is None
    assert "no process log or asset entry names the client host (10.9.9.9)" in match.reason


def test_no_process_in_window():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(hours=13))
    match = match_request(request(), index(process), SETTINGS)
    assert match.status == NOT_FOUND
    assert match.reason.startswith("no rclone process on ws01 by SrcIpAddr 10.0.0.5 through test started between")


def test_clock_skew_allows_process_logged_after_request():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME + timedelta(seconds=90))
    assert match_request(request(), index(process), SETTINGS).status == FOUND
    strict = CorrelationSettings(window=timedelta(hours=12), clock_skew=timedelta(seconds=30))
    assert match_request(request(), index(process), strict).status == NOT_FOUND


def test_clock_skew_widens_window_start():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(hours=12, minutes=1))
    assert match_request(request(), index(process), SETTINGS).status == FOUND
    no_skew = CorrelationSettings(window=timedelta(hours=12), clock_skew=timedelta(0))
    assert match_request(request(), index(process), no_skew).status == NOT_FOUND


def test_two_processes_told_apart_by_bucket():
    backup = rclone(r"rclone.exe sync C:\data nas:nightly/ws01", REQUEST_TIME - timedelta(minutes=30), pid=1)
    theft = rclone(r"rclone.exe copy C:\data mega:loot", REQUEST_TIME - timedelta(minutes=1), pid=2)
    to_backup = match_request(request(dst="nas.example.net", path="/nightly/ws01/f"), index(backup, theft), SETTINGS)
    assert to_backup.status == FOUND
    assert to_backup.process is backup
    assert "chosen over 1 other rclone process(es) on the evidence" in to_backup.reason


def test_two_processes_without_evidence_are_ambiguous():
    first = rclone(r"rclone.exe sync C:\data nas:nightly/ws01", REQUEST_TIME - timedelta(minutes=30), pid=1)
    second = rclone(r"rclone.exe copy C:\data mega:loot", REQUEST_TIME - timedelta(minutes=1), pid=2)
    match = match_request(request(dst="g.api.mega.co.nz", path="/cs"), index(first, second), SETTINGS)
    assert match.status == AMBIGUOUS
    assert match.process is None
    assert "2 rclone processes on ws01" in match.reason
    assert "pid 1 on WS01.corp.example.com" in match.reason
    assert "pid 2 on WS01.corp.example.com" in match.reason


def test_user_agent_override_rules_out_and_identifies():
    plain = rclone(r"rclone.exe copy C:\x s3:a", REQUEST_TIME - timedelta(minutes=3), pid=1)
    disguised = rclone('rclone.exe copy C:\\x s3:b --user-agent "Mozilla/5.0 (Windows NT 10.0)"',
                       REQUEST_TIME - timedelta(minutes=2), pid=2)
    browser_like = match_request(request(dst="x.example.com", agent="Mozilla/5.0 (Windows NT 10.0)"),
                                 index(plain, disguised), SETTINGS)
    assert browser_like.status == FOUND
    assert browser_like.process is disguised
    assert "its --user-agent is the request's user agent" in browser_like.reason

    default_agent = match_request(request(dst="x.example.com"), index(plain, disguised), SETTINGS)
    assert default_agent.process is plain


def test_go_connect_user_agent_is_no_evidence():
    disguised = rclone('rclone.exe copy C:\\x s3:b --user-agent "Mozilla/5.0"', REQUEST_TIME - timedelta(minutes=2))
    match = match_request(request(dst="x.example.com", agent="Go-http-client/1.1"), index(disguised), SETTINGS)
    assert match.status == FOUND
    assert "evidence" not in match.reason


def test_process_that_ended_is_ruled_out():
    ended = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(hours=1), pid=7, guid="{G1}")
    exit_record = ProcessExit(REQUEST_TIME - timedelta(minutes=30), "WS01", 7, "{g1}")
    match = match_request(request(), index(ended, exits=[exit_record]), SETTINGS)
    assert match.status == NOT_FOUND
    assert "ruled out: pid 7 ended at" in match.reason


def test_exit_within_clock_skew_keeps_process():
    process = rclone(r"rclone.exe copy C:\x s3:bucket/y", REQUEST_TIME - timedelta(hours=1), pid=7)
    exit_record = ProcessExit(REQUEST_TIME - timedelta(seconds=30), "WS01", 7, None)
    assert match_request(request(), index(process, exits=[exit_record]), SETTINGS).status == FOUND


def test_renamed_binary_is_matched():
    renamed = rclone(r"C:\Temp\winupdate.exe copy C:\x mega:loot --transfers 16", REQUEST_TIME - timedelta(minutes=1),
                     image=r"C:\Temp\winupdate.exe", original=None)
    match = match_request(request(dst="g.api.mega.co.nz"), index(renamed), SETTINGS)
    assert match.status == FOUND
    assert "rclone recognized by command-line shape (subcommand copy, remote mega:)" in match.reason


def test_same_process_in_two_logs_counts_once():
    sysmon = rclone(r"rclone.exe copy C:\x s3:a", REQUEST_TIME - timedelta(minutes=3), pid=9)
    security = rclone(r"rclone.exe copy C:\x s3:a", REQUEST_TIME - timedelta(minutes=3) + timedelta(seconds=1), pid=9)
    assert match_request(request(dst="x.example.com"), index(sysmon, security), SETTINGS).status == FOUND


def test_proxy_user_is_evidence():
    alice = rclone(r"rclone.exe copy C:\x s3:a", REQUEST_TIME - timedelta(minutes=3), pid=1, user="CORP\\alice")
    bob = rclone(r"rclone.exe copy C:\x s3:b", REQUEST_TIME - timedelta(minutes=2), pid=2, user="CORP\\bob")
    match = match_request(request(dst="x.example.com", user="bob@corp.example.com"), index(alice, bob), SETTINGS)
    assert match.process is bob


def test_host_key_forms():
    assert host_key("WS01.corp.example.com.") == "ws01"
    assert host_key("CORP\\WS01") == "ws01"
    assert host_key("10.0.0.5") == "10.0.0.5"
    assert host_key("") is None


def test_load_assets(tmp_path):
    path = tmp_path / "assets.csv"
    path.write_text("DeviceName,IPAddress\nws07.corp,10.7.7.7\n\n", encoding="utf-8")
    hosts = HostDirectory()
    assert load_assets(str(path), hosts) == 1
    assert hosts.lookup(None, "10.7.7.7").keys == {"ws07": f"SrcIpAddr 10.7.7.7 through asset file {path}:2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,owner\nws1,x\n", ":1: the header needs a host name column and an address column"),
        ("hostname,ip\nws1,not-an-ip\n", ":2: 'not-an-ip' is not an IP address"),
        ("", "the asset file is empty"),
    ],
)
def test_load_assets_errors(tmp_path, text, message):
    path = tmp_path / "assets.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AssetFileError, match=message):
        load_assets(str(path), HostDirectory())


def test_host_address_from_sysmon_3():
    hosts = HostDirectory()
    hosts.add_addresses([HostAddress("WS09.corp", "10.0.0.9", "Sysmon 3")])
    assert hosts.lookup("other", "10.0.0.9").keys == {"other": "SrcHostname other", "ws09": "SrcIpAddr 10.0.0.9 through Sysmon 3"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("1d", 86400), ("1h30m", 5400), ("0", 0), ("500ms", 0.5)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "12", "h", "5 minutes", "1x"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="write a number and a unit"):
        parse_duration(text)


def test_hunt_adds_process_columns_for_samples():
    connection = duckdb.connect()
    result = hunt(
        [str(SAMPLES / "proxy-rclone-jobs.log")],
        process_logs=[str(SAMPLES / "endpoint")],
        assets_path=str(SAMPLES / "assets.csv"),
        connection=connection,
    )
    by_host = {finding["DstHostname"]: finding for finding in result.findings}
    backup = by_host["backup.example.com"]
    assert backup["ProcessMatch"].startswith("found: pid 4120 on BACKUP01.corp.example.com")
    assert backup["RcloneSubcommand"] == "sync"
    assert backup["RcloneDestination"] == "nas-backup:nightly/backup01"
    assert backup["RcloneDestinationRemote"] == "nas-backup"
    assert backup["RcloneDestinationBucket"] == "nightly"
    assert backup["RcloneConfig"] == r"C:\ProgramData\rclone\backup.conf"
    assert backup["ProcessUser"] == "CORP\\svc-backup"
    assert backup["ProcessSourceLine"] == 3
    assert backup["TimeOfDayUtc"] == "01:02"

    # The backup process ended at 01:40, so the 03:05 upload is the second process's.
    dump = by_host["dump.example.org"]
    assert dump["ProcessId"] == 6640

    assert by_host["artifacts.example.com"]["ProcessUser"] == "jenkins"
    assert by_host["vault.mediavault-cloud.example"]["RcloneConfig"] == r"C:\Program Files\MediaVault\rclone.conf"
    assert by_host["g.api.mega.co.nz"]["ProcessOriginalFileName"] == "rclone.exe"
    assert by_host["g.api.mega.co.nz"]["ProcessImage"].endswith("winupdate-helper.exe")

    unknown = by_host["files.example.org"]
    assert unknown["ProcessMatch"].startswith("not found: no process log or asset entry names the client host")
    assert unknown["ProcessId"] is None

    summary = result.process_correlation.summary
    assert summary.counts == {FOUND: 6, NOT_FOUND: 1, AMBIGUOUS: 0}


def test_hunt_without_process_logs_adds_empty_columns():
    result = hunt([str(SAMPLES / "proxy-rclone-jobs.log")])
    assert result.process_correlation is None
    assert all(finding["ProcessMatch"] is None for finding in result.findings)
    assert all("RcloneDestination" in finding for finding in result.findings)
