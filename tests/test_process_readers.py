"""Process-creation readers: Sysmon, Security 4688, Defender, ASIM and auditd, in their export shapes."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pytest

from proxyhunt.process.reader import read_process_logs

from corpus import CORPUS as SHARED_CORPUS

CORPUS = SHARED_CORPUS / "process-creation"
SAMPLES = Path(__file__).parents[1] / "examples" / "process" / "endpoint"

SYSMON_EVENT = """<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>
<Provider Name="Microsoft-Windows-Sysmon" Guid="{{5770385f-c22a-43e0-bf4c-06f5698ffbd9}}"/><EventID>{event_id}</EventID>
<TimeCreated SystemTime="2026-11-20T01:00:02.1234567Z"/><Channel>Microsoft-Windows-Sysmon/Operational</Channel>
<Computer>WS01.corp.example.com</Computer></System><EventData>
<Data Name="UtcTime">2026-11-20 01:00:02.101</Data><Data Name="ProcessGuid">{{aa}}</Data>
<Data Name="ProcessId">4120</Data><Data Name="Image">{image}</Data><Data Name="OriginalFileName">{original}</Data>
<Data Name="CommandLine">{command_line}</Data><Data Name="User">CORP\\alice</Data>
<Data Name="ParentImage">C:\\Windows\\explorer.exe</Data></EventData></Event>"""


def sysmon_xml(event_id: int = 1, image: str = r"C:\Tools\rclone.exe",
               command_line: str = r"rclone.exe copy C:\data s3:bucket/x", original: str = "rclone.exe") -> str:
    return SYSMON_EVENT.format(event_id=event_id, image=image, command_line=command_line, original=original)


def read_one(path: Path):
    logs = read_process_logs([str(path)])
    assert len(logs.reports) == 1
    return logs, logs.reports[0]


def test_sysmon_xml_export(tmp_path):
    path = tmp_path / "sysmon.xml"
    path.write_text("<?xml version='1.0'?>\n<Events>\n" + sysmon_xml() + "\n" + sysmon_xml(image=r"C:\x\calc.exe",
                    command_line="calc.exe", original="CALC.EXE") + "\n</Events>\n", encoding="utf-8")
    logs, report = read_one(path)
    assert report.format == "XML (Sysmon 1)"
    assert report.records == 2
    assert report.process_events == 2
    assert report.rclone_processes == 1
    event = logs.processes[0].event
    assert event.time == datetime(2026, 11, 20, 1, 0, 2, 101000)
    assert event.hostname == "WS01.corp.example.com"
    assert event.process_id == 4120
    assert event.original_file_name == "rclone.exe"
    assert event.user == "CORP\\alice"
    assert event.parent_image == r"C:\Windows\explorer.exe"
    assert event.source_line == 3


def test_sysmon_xml_utf16_without_root(tmp_path):
    # wevtutil qe /f:xml writes <Event> elements with no root; PowerShell 5 saves UTF-16.
    path = tmp_path / "wevtutil.xml"
    path.write_bytes((sysmon_xml() + sysmon_xml()).encode("utf-16"))
    logs, report = read_one(path)
    assert report.rclone_processes == 2
    assert report.rejected == []


def test_damaged_xml_event_does_not_stop_others(tmp_path):
    path = tmp_path / "damaged.xml"
    broken = sysmon_xml().replace("</EventData>", "</EventDatum>")
    path.write_text(broken + "\n" + sysmon_xml(), encoding="utf-8")
    logs, report = read_one(path)
    assert report.rclone_processes == 1
    assert len(report.rejected) == 1
    assert report.rejected[0].line == 1
    assert "invalid XML" in report.rejected[0].reason


def test_sysmon_network_and_terminate_events(tmp_path):
    network = sysmon_xml(event_id=3).replace(
        "</EventData>", '<Data Name="Initiated">true</Data><Data Name="SourceIp">10.1.2.3</Data></EventData>'
    )
    path = tmp_path / "sysmon.xml"
    path.write_text(network + sysmon_xml(event_id=5), encoding="utf-8")
    logs, report = read_one(path)
    assert report.process_events == 0
    assert [(address.hostname, address.ip) for address in logs.addresses] == [("WS01.corp.example.com", "10.1.2.3")]
    assert [(ended.process_id, ended.time) for ended in logs.exits] == [(4120, datetime(2026, 11, 20, 1, 0, 2, 101000))]


def test_evtx_dump_json_and_gzip(tmp_path):
    record = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                "EventID": 1,
                "TimeCreated": {"#attributes": {"SystemTime": "2026-11-20T01:00:00.000000Z"}},
                "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "ws01",
            },
            "EventData": {"UtcTime": "2026-11-20 01:00:00.500", "ProcessId": 77, "Image": "/usr/bin/rclone",
                          "CommandLine": "rclone sync /srv b2:bucket", "User": "root"},
        }
    }
    text = "Record 1\n" + json.dumps(record, indent=2) + "\nRecord 2\n" + json.dumps(record, indent=2) + "\n"
    path = tmp_path / "dump.json.gz"
    path.write_bytes(gzip.compress(text.encode()))
    logs, report = read_one(path)
    assert report.format == "JSON (Sysmon 1)"
    assert report.rclone_processes == 2
    assert [process.event.source_line for process in logs.processes] == [2, 29]
    assert logs.processes[0].command.destination.remote == "b2"


def test_winlogbeat_json_lines(tmp_path):
    line = {
        "@timestamp": "2026-11-20T01:00:00.000Z",
        "winlog": {"event_id": 1, "provider_name": "Microsoft-Windows-Sysmon", "channel": "Microsoft-Windows-Sysmon/Operational",
                   "computer_name": "WS02", "event_data": {"UtcTime": "2026-11-20 01:00:00.250", "ProcessId": "5",
                                                           "Image": r"C:\r\rclone.exe", "CommandLine": "rclone.exe copy a b:c"}},
    }
    path = tmp_path / "winlogbeat.ndjson"
    path.write_text(json.dumps(line) + "\n{not json\n" + json.dumps(line) + "\n", encoding="utf-8")
    logs, report = read_one(path)
    assert report.rclone_processes == 2
    assert [rejected.line for rejected in report.rejected] == [2]
    assert logs.processes[1].event.source_line == 3


def test_security_4688_flattened(tmp_path):
    records = [
        {"EventID": 4688, "Channel": "Security", "Computer": "SRV01", "TimeCreated": "2026-11-20T02:15:00Z",
         "NewProcessId": "0x1a2c", "NewProcessName": r"C:\Tools\rclone.exe", "CommandLine": "rclone.exe copy E:\\m v:lib",
         "SubjectUserName": "SRV01$", "SubjectDomainName": "CORP", "TargetUserName": "-", "TargetDomainName": "-",
         "ParentProcessName": r"C:\Windows\System32\cmd.exe"},
        # Command-line auditing off: no CommandLine, so only the image name identifies rclone.
        {"EventID": 4688, "Channel": "Security", "Computer": "SRV01", "TimeCreated": "2026-11-20T02:16:00Z",
         "NewProcessId": "0x10", "NewProcessName": r"C:\Tools\rclone.exe", "SubjectUserName": "bob",
         "SubjectDomainName": "CORP"},
        {"EventID": 4689, "Channel": "Security", "Computer": "SRV01", "TimeCreated": "2026-11-20T02:30:00Z",
         "ProcessId": "0x1a2c", "ProcessName": r"C:\Tools\rclone.exe"},
    ]
    path = tmp_path / "security.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    logs, report = read_one(path)
    assert report.format == "JSON (Security 4688)"
    assert report.rclone_processes == 2
    first, second = (process.event for process in logs.processes)
    assert first.process_id == 0x1A2C
    assert first.user == "CORP\\SRV01$"
    assert first.parent_image == r"C:\Windows\System32\cmd.exe"
    assert second.command_line is None
    assert second.user == "CORP\\bob"
    assert [(ended.process_id, ended.time) for ended in logs.exits] == [(0x1A2C, datetime(2026, 11, 20, 2, 30))]


def test_defender_portal_csv(tmp_path):
    path = tmp_path / "DeviceProcessEvents.csv"
    path.write_text(
        "Timestamp [UTC],DeviceName,ActionType,FileName,FolderPath,ProcessVersionInfoOriginalFileName,ProcessId,"
        "ProcessCommandLine,AccountDomain,AccountName,InitiatingProcessFolderPath\n"
        '"11/20/2026, 2:05:00.000 AM",fs01.corp.example.com,ProcessCreated,backup.exe,C:\\T,rclone.exe,5120,'
        '"backup.exe sync \\\\fs01\\p corp-s3:mirror/2026 --transfers 8",CORP,adm,"C:\\Windows\\explorer.exe"\n'
        "short,row\n",
        encoding="utf-8",
    )
    logs, report = read_one(path)
    assert report.format == "CSV (DeviceProcessEvents)"
    assert report.rclone_processes == 1
    event = logs.processes[0].event
    assert event.time == datetime(2026, 11, 20, 2, 5)
    assert event.image == r"C:\T\backup.exe"
    assert event.user == "CORP\\adm"
    assert logs.processes[0].recognized_by == "OriginalFileName rclone.exe"
    assert [(rejected.line, rejected.reason) for rejected in report.rejected] == [(3, "2 fields where the header has 11")]


def test_asim_process_events_with_device_address(tmp_path):
    rows = [
        {"TimeGenerated": "2026-11-20T03:00:00Z", "EventType": "ProcessCreated", "DvcHostname": "lnx01",
         "DvcIpAddr": "10.9.8.7", "TargetProcessName": "/opt/x/sync-agent", "TargetProcessId": "991",
         "TargetProcessCommandLine": "sync-agent copy /data wasabi:corp-bucket/2026", "TargetUsername": "svc",
         "ParentProcessName": "/usr/bin/bash"},
        {"TimeGenerated": "2026-11-20T03:01:00Z", "EventType": "ProcessTerminated", "DvcHostname": "lnx01",
         "TargetProcessName": "/opt/x/sync-agent", "TargetProcessCommandLine": "sync-agent copy /data wasabi:x"},
    ]
    path = tmp_path / "imProcessCreate.json"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    logs, report = read_one(path)
    assert report.process_events == 1
    assert logs.processes[0].recognized_by == "command-line shape (subcommand copy, remote wasabi:)"
    assert logs.processes[0].event.user == "svc"
    assert [(address.hostname, address.ip) for address in logs.addresses] == [("lnx01", "10.9.8.7")]


def test_auditd_execve_hex_and_split_arguments(tmp_path):
    hexed = "/srv/my data".encode().hex().upper()
    lines = [
        'node=lnx02 type=SYSCALL msg=audit(1795138210.412:100): arch=c000003e syscall=59 success=yes exit=0 '
        'ppid=1 pid=4242 auid=1000 uid=0 gid=0 comm="rclone" exe="/usr/bin/rclone" key="exec"\x1dUID="root" AUID="alice"',
        f'node=lnx02 type=EXECVE msg=audit(1795138210.412:100): argc=4 a0="rclone" a1="copy" a2={hexed} a3_len=14 '
        'a3[0]="remote:bu" a3[1]="cket/x"',
        'node=lnx02 type=PROCTITLE msg=audit(1795138210.412:100): proctitle=72636C6F6E65',
        "this is not an audit record",
        'node=lnx02 type=EXECVE msg=audit(1795138300.000:101): argc=2 a0="ls" a1="-l"',
    ]
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logs, report = read_one(path)
    assert report.format == "auditd (auditd EXECVE)"
    assert report.process_events == 2
    assert report.rclone_processes == 1
    assert [rejected.line for rejected in report.rejected] == [4]
    event = logs.processes[0].event
    assert event.argv == ("rclone", "copy", "/srv/my data", "remote:bucket/x")
    assert event.command_line == "rclone copy '/srv/my data' remote:bucket/x"
    assert event.process_id == 4242
    assert event.user == "root"
    assert event.hostname == "lnx02"
    assert event.time == datetime(2026, 11, 20, 1, 30, 10, 412000)
    assert event.image == "/usr/bin/rclone"


def test_unknown_format_is_a_file_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some words\nmore words\n", encoding="utf-8")
    logs, report = read_one(path)
    assert report.error is not None
    assert report.error.startswith(f"{path}: not a recognized process-creation log")


def test_missing_path_is_reported(tmp_path):
    logs = read_process_logs([str(tmp_path / "absent.evtx")])
    assert logs.reports[0].error is not None
    assert "absent.evtx" in logs.reports[0].path


def test_json_record_of_another_kind_is_rejected(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"hello": "world"}\n', encoding="utf-8")
    logs, report = read_one(path)
    assert report.rejected[0].reason.startswith("not a process-creation record")


def test_bundled_samples_yield_six_rclone_processes():
    logs = read_process_logs([str(SAMPLES)])
    assert [report.error for report in logs.reports] == [None] * 5
    assert sum(report.rclone_processes for report in logs.reports) == 6


@pytest.mark.skipif(not CORPUS.exists(), reason="public corpus not present")
def test_corpus_sigma_regression_evtx_and_json_agree():
    for folder in sorted((CORPUS / "sigma-regression").iterdir()):
        evtx_logs = read_process_logs([str(next(folder.glob("*.evtx")))])
        json_logs = read_process_logs([str(next(folder.glob("*.json")))])
        assert evtx_logs.reports[0].format == "EVTX (Sysmon 1)"
        assert evtx_logs.reports[0].process_events == 1
        assert json_logs.reports[0].process_events == 1
        assert evtx_logs.reports[0].rclone_processes == 0


@pytest.mark.skipif(not CORPUS.exists(), reason="public corpus not present")
@pytest.mark.parametrize("suffix", ["evtx", "json"])
def test_corpus_curl_event_fields(suffix):
    folder = CORPUS / "sigma-regression" / "proc_creation_win_curl_custom_user_agent"
    logs = read_process_logs([str(next(folder.glob(f"*.{suffix}")))], keep_others=True)
    assert logs.processes == []
    (event,) = logs.other_processes
    assert event.time == datetime(2025, 12, 11, 6, 17, 19, 636000)
    assert event.hostname == "swachchhanda"
    assert event.process_id == 6400
    assert event.image == r"C:\Windows\System32\curl.exe"
    assert event.original_file_name == "curl.exe"
    assert event.command_line == 'curl.exe  -H "User-Agent: EvilAgent" http://example.com'
    assert event.user == "swachchhanda\\xodih"
    assert event.parent_image == r"C:\Windows\System32\cmd.exe"
    assert event.source_line == 1


@pytest.mark.skipif(not CORPUS.exists(), reason="public corpus not present")
def test_corpus_otrf_flattened_security_and_sysmon():
    logs = read_process_logs([str(CORPUS / "otrf-cmd_bitsadmin_download_psh_script.trimmed.ndjson")])
    report = logs.reports[0]
    assert report.format == "JSON (Security 4688, Sysmon 1)"
    assert report.records == 133
    assert report.process_events == 4
    assert report.rejected == []


@pytest.mark.skipif(not CORPUS.exists(), reason="public corpus not present")
def test_corpus_otrf_4688_fields():
    logs = read_process_logs([str(CORPUS / "otrf-cmd_bitsadmin_download_psh_script.trimmed.ndjson")], keep_others=True)
    security = [event for event in logs.other_processes if event.source_kind == "Security 4688"]
    bitsadmin = next(event for event in security if event.image.endswith("bitsadmin.exe"))
    assert bitsadmin.process_id == 0x242C
    assert bitsadmin.user == "WORKSTATION5\\wardog"
    assert bitsadmin.hostname == "WORKSTATION5"
    assert bitsadmin.time == datetime(2020, 10, 23, 2, 36, 43, 542000)
    assert bitsadmin.command_line.startswith("bitsadmin.exe  /transfer /Download")
