"""``proxyhunt hunt`` run as a separate process: exit status, output, errors and hostile input."""

from __future__ import annotations

import json
import os
import platform
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxyhunt.formats import format_names
from proxyhunt.schema import COLUMN_NAMES

REPOSITORY = Path(__file__).parents[1]
SAMPLES = REPOSITORY / "samples"
BUNDLED_ID = "2c03648b-e081-41a5-b9fb-7d854a915091"
RULE_FIELDS = ("RuleId", "RuleTitle", "RuleLevel", "RuleTags", "RuleSource")

# A user agent that tries to clear the screen, set the window title, ring the
# bell, and reverse the text that follows it.
HOSTILE_USER_AGENT = "rclone/v1.66.0 \x1b[2J\x1b]0;pwned\x07\x01\x7f\x9b31m\u202eevil"
RAW_CONTROL_CHARACTERS = ("\x1b", "\x07", "\x01", "\x7f", "\x9b", "\u202e")


def proxyhunt_command() -> list[str]:
    script = shutil.which("proxyhunt", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "proxyhunt"]


def run_proxyhunt(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``proxyhunt`` with a wide, colourless terminal and check that it printed no traceback."""
    env = {**os.environ, "COLUMNS": "250"}
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [*proxyhunt_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        cwd=cwd,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    return result


def combined_line(user_agent: str, minute: int = 50, ip: str = "10.0.0.5", method: str = "PUT") -> str:
    return (
        f'{ip} - alice [03/Nov/2026:02:{minute:02d}:44 +0100] "{method} http://bucket.example/upload HTTP/1.1" '
        f'200 1234 "-" "{user_agent}"'
    )


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def rclone_log(tmp_path) -> Path:
    return write_log(
        tmp_path / "access.log",
        [
            combined_line("rclone/v1.66.0", minute=50),
            combined_line("curl/8.5.0", minute=51, ip="10.0.0.6", method="GET"),
            combined_line("RClone/V1.68.2", minute=52, ip="10.0.0.7"),
        ],
    )


@pytest.fixture
def clean_log(tmp_path) -> Path:
    return write_log(
        tmp_path / "clean.log",
        [combined_line("curl/8.5.0"), combined_line("Mozilla/5.0 rclone/v1.66 lookalike", minute=51, method="GET")],
    )


BROKEN_RULE = "title: Broken\nlogsource:\n    category: proxy\ndetection:\n    selection: [unclosed\n"


# Exit status and findings


def test_samples_exit_1_with_findings():
    result = run_proxyhunt("hunt", "samples/", "--no-color", cwd=REPOSITORY)

    assert result.returncode == 1
    assert "findings" in result.stdout.lower()
    assert "Rclone Activity via Proxy" in result.stdout
    assert re.search(r"rclone/v\d", result.stdout, re.IGNORECASE)


def test_jsonl_output(tmp_path, rclone_log):
    output = tmp_path / "findings.jsonl"
    result = run_proxyhunt("hunt", str(rclone_log), "--output", str(output), "--quiet")

    assert result.returncode == 1
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2
    for record in records:
        assert set(COLUMN_NAMES) <= set(record)
        assert set(RULE_FIELDS) <= set(record)
        assert record["RuleId"] == BUNDLED_ID
        assert record["RuleTitle"] == "Rclone Activity via Proxy"
        assert record["RuleLevel"] == "medium"
        assert record["RuleTags"] == ["attack.exfiltration", "attack.t1567.002"]
        assert record["TimeGenerated"].endswith("Z")
        assert record["SourceFile"] == str(rclone_log)
    assert [record["SourceLine"] for record in records] == [1, 3]
    assert [record["HttpUserAgent"] for record in records] == ["rclone/v1.66.0", "RClone/V1.68.2"]
    assert records[0]["TimeGenerated"] == "2026-11-03T01:50:44Z"
    assert records[0]["RawEvent"] == combined_line("rclone/v1.66.0", minute=50)


def test_no_rclone_exits_0(clean_log):
    result = run_proxyhunt("hunt", str(clean_log), "--no-color")

    assert result.returncode == 0
    assert "No findings" in result.stdout


def test_missing_file_exits_2(tmp_path):
    missing = tmp_path / "missing.log"
    result = run_proxyhunt("hunt", str(missing), "--no-color")

    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "not found" in result.stderr


def test_undetectable_file_exits_2(tmp_path):
    junk = write_log(tmp_path / "notes.txt", ["hello world", "this is not a proxy log", "nor is this"])
    result = run_proxyhunt("hunt", str(junk), "--no-color")

    assert result.returncode == 2
    assert str(junk) in result.stderr
    assert "--format" in result.stderr
    for name in format_names():
        assert name in result.stderr


def test_no_default_rules_without_rules_exits_2(rclone_log):
    result = run_proxyhunt("hunt", str(rclone_log), "--no-default-rules")

    assert result.returncode == 2
    assert "--rules" in result.stderr


def test_help_documents_exit_status():
    result = run_proxyhunt("hunt", "--help")

    assert result.returncode == 0
    assert "Exit status" in result.stdout
    for status in ("0", "1", "2"):
        assert any(line.strip().startswith(status + " ") for line in result.stdout.splitlines())


# Rules given with --rules


def test_broken_rule_reported_and_others_run(tmp_path, rclone_log):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_RULE, encoding="utf-8")
    output = tmp_path / "findings.jsonl"
    result = run_proxyhunt("hunt", str(rclone_log), "--rules", str(broken), "--output", str(output), "--no-color")

    assert result.returncode == 1
    assert str(broken) in result.stderr
    assert "line" in result.stderr
    assert len(output.read_text(encoding="utf-8").splitlines()) == 2


def test_only_broken_rule_exits_2(tmp_path, rclone_log):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_RULE, encoding="utf-8")
    result = run_proxyhunt("hunt", str(rclone_log), "--rules", str(broken), "--no-default-rules", "--no-color")

    assert result.returncode == 2
    assert str(broken) in result.stderr


def test_rule_duckdb_cannot_run_is_reported(tmp_path, rclone_log):
    lookahead = tmp_path / "lookahead.yml"
    lookahead.write_text(
        "title: Look-ahead\nlogsource:\n    category: proxy\n"
        "detection:\n    selection:\n        c-useragent|re: '(?!curl)rclone'\n    condition: selection\n",
        encoding="utf-8",
    )
    result = run_proxyhunt("hunt", str(rclone_log), "--rules", str(lookahead), "--no-color")

    assert result.returncode == 1
    assert str(lookahead) in result.stderr
    assert "RE2" in result.stderr


def test_user_rule_finds_its_events(tmp_path, clean_log):
    rule = tmp_path / "curl.yml"
    rule.write_text(
        "title: Curl Upload\nlogsource:\n    category: proxy\n"
        "detection:\n    selection:\n        c-useragent|startswith: 'curl/'\n        cs-method: PUT\n"
        "    condition: selection\nlevel: low\n",
        encoding="utf-8",
    )
    output = tmp_path / "findings.jsonl"
    result = run_proxyhunt("hunt", str(clean_log), "--rules", str(rule), "--no-default-rules", "--output", str(output))

    assert result.returncode == 1
    [record] = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert record["RuleTitle"] == "Curl Upload"
    assert record["RuleLevel"] == "low"
    assert record["RuleSource"] == str(rule)


# Inputs


def test_dash_reads_standard_input(tmp_path):
    output = tmp_path / "findings.jsonl"
    text = combined_line("rclone/v1.66.0") + "\n" + combined_line("curl/8.5.0", minute=51) + "\n"
    result = run_proxyhunt("hunt", "-", "--output", str(output), "--quiet", stdin=text)

    assert result.returncode == 1
    [record] = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert record["HttpUserAgent"] == "rclone/v1.66.0"
    assert record["SourceLine"] == 1


def test_format_overrides_detection(tmp_path):
    # Mostly junk lines: detection gives up, but --format combined reads the one good line.
    lines = [f"junk line {number}" for number in range(8)] + [combined_line("rclone/v1.66.0")]
    mixed = write_log(tmp_path / "mixed.log", lines)

    detected = run_proxyhunt("hunt", str(mixed), "--no-color")
    forced = run_proxyhunt("hunt", str(mixed), "--format", "combined", "--no-color")

    assert detected.returncode == 2
    assert "--format" in detected.stderr
    assert forced.returncode == 1
    assert "rclone/v1.66.0" in forced.stdout


def test_wrong_forced_format_is_reported(rclone_log):
    result = run_proxyhunt("hunt", str(rclone_log), "--format", "squid", "--no-color")

    assert result.returncode == 2
    assert str(rclone_log) in result.stderr
    assert "Squid" in result.stderr


def test_squid_native_warns_rule_blind(tmp_path):
    squid = write_log(
        tmp_path / "squid-native.log",
        [
            "1793843405.000   3004 10.20.1.22 TCP_MISS/200 306048 GET http://www.example.com/news - "
            "HIER_DIRECT/198.51.100.110 text/html",
            "1793843464.000   1187 10.20.1.23 TCP_MISS/200 126676 PUT http://bucket.example/upload alice "
            "HIER_DIRECT/198.51.100.70 text/html",
        ],
    )
    # The seed rclone rule alone, which reads only the user agent; the rclone pack has rules that Squid's native log can feed.
    rclone_rule = str(REPOSITORY / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")
    result = run_proxyhunt("hunt", str(squid), "--no-color", "--no-default-rules", "--rules", rclone_rule)

    # No input could have shown a hit, so "no findings" must not read as clean.
    assert result.returncode == 2
    assert "the data could not have shown a hit" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "could not match" in line]
    assert len(warnings) == 1
    assert str(squid) in warnings[0]
    assert "Rclone Activity via Proxy" in warnings[0]
    assert "HttpUserAgent" in warnings[0]


# Hostile input


def test_hostile_user_agent_not_echoed_raw(tmp_path):
    hostile = write_log(tmp_path / "hostile.log", [combined_line(HOSTILE_USER_AGENT)])
    result = run_proxyhunt("hunt", str(hostile), "--no-color")

    assert result.returncode == 1
    for character in RAW_CONTROL_CHARACTERS:
        assert character not in result.stdout, f"{character!r} reached standard output"
        assert character not in result.stderr, f"{character!r} reached standard error"
    assert "\\x1b[2J" in result.stdout


def run_on_terminal(*args: str) -> tuple[int, str]:
    """Run ``proxyhunt`` with stdout and stderr on a pseudo-terminal; return its exit status and output."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "250", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [*proxyhunt_command(), *args], stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    output = bytearray()
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(primary)
        returncode = process.wait(timeout=60)
    return returncode, output.decode("utf-8", errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_hostile_user_agent_on_terminal(tmp_path):
    # On a terminal rich writes its own colour sequences, so look for the log's sequences only.
    hostile = write_log(tmp_path / "hostile.log", [combined_line(HOSTILE_USER_AGENT)])

    returncode, text = run_on_terminal("hunt", str(hostile))

    assert returncode == 1
    assert "Traceback" not in text
    for payload in ("\x1b[2J", "\x1b]0;pwned", "\x07", "\x01", "\x7f", "\x9b", "\u202e"):
        assert payload not in text, f"{payload!r} reached the terminal"
    assert "\\x1b[2J" in text


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_on_terminal_only(tmp_path):
    # Above the progress threshold (8 MiB) the bar appears on a terminal, and never in a pipe.
    lines = [combined_line("curl/8.5.0", minute=index % 60) for index in range(80_000)]
    large = write_log(tmp_path / "large.log", lines)
    assert large.stat().st_size > 8 * 1024 * 1024

    returncode, text = run_on_terminal("hunt", str(large), "--limit", "0")
    piped = run_proxyhunt("hunt", str(large), "--limit", "0")

    assert returncode == 0
    assert "reading" in text
    assert "reading" not in piped.stderr
    assert "reading" not in piped.stdout


def test_connect_only_log_notes_tls(tmp_path: Path) -> None:
    lines = [
        f'10.0.0.5 - - [03/Nov/2026:02:{minute:02d}:44 +0100] "CONNECT bucket.example:443 HTTP/1.1" 200 9000 "-" '
        '"Go-http-client/1.1"'
        for minute in range(10)
    ]
    log = write_log(tmp_path / "tunnels.log", lines)

    result = run_proxyhunt("hunt", str(log))

    assert result.returncode == 0
    assert "10 of 10 requests are CONNECT tunnels" in result.stderr
    assert "without TLS interception" in result.stderr


def test_hunt_rejects_output_that_is_an_input(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line("rclone/v1.68.2") + "\n")
    original = log.read_bytes()

    result = run_proxyhunt("hunt", str(log), "--output", str(log))

    assert result.returncode == 2
    assert "is also an input log" in result.stderr
    assert log.read_bytes() == original


def test_hunt_output_dash_writes_jsonl_to_stdout(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line("rclone/v1.68.2") + "\n" + combined_line("curl/8.5.0") + "\n")

    result = run_proxyhunt("hunt", str(log), "--output", "-")

    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    assert records[0]["HttpUserAgent"] == "rclone/v1.68.2"
    assert "1 finding in 2 events." in result.stderr


def test_hunt_missing_rules_path_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line("curl/8.5.0") + "\n")

    result = run_proxyhunt("hunt", str(log), "--rules", str(tmp_path / "missing-rules"))

    assert result.returncode == 2
    assert "rule file not found" in result.stderr
    assert "1 requested rule could not run" in result.stdout


def test_hunt_empty_file_verdict(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")

    result = run_proxyhunt("hunt", str(log))

    assert result.returncode == 0
    assert "the inputs contain no events" in result.stdout
    assert "see the errors above" not in result.stdout


def test_sources_table_marks_unknown_upload(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(combined_line("rclone/v1.68.2") + "\n")

    result = run_proxyhunt("hunt", str(log))

    assert result.returncode == 1
    assert "unknown" in result.stdout.split("Hits per source", 1)[1]


def test_findings_from_damaged_gzip_are_flagged(tmp_path: Path) -> None:
    import gzip

    text = combined_line("rclone/v1.68.2") + "\n" + combined_line("curl/8.5.0") + "\n"
    data = bytearray(gzip.compress(text.encode("utf-8")))
    data[-8] ^= 0xFF  # corrupt the CRC-32 in the gzip trailer; the deflate data stays intact
    log = tmp_path / "access.log.gz"
    log.write_bytes(bytes(data))

    result = run_proxyhunt("hunt", str(log), "--output", "-")

    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    assert records[0]["SourceDamaged"] is True
    assert "may be garbled" in result.stderr


def test_partly_blind_hunt_exits_0(tmp_path: Path) -> None:
    squid = write_log(
        tmp_path / "squid-native.log",
        ["1793843405.000   3004 10.20.1.22 TCP_MISS/200 306048 GET http://www.example.com/news - HIER_DIRECT/- text/html"],
    )
    combined = write_log(tmp_path / "access.log", [combined_line("curl/8.5.0")])

    result = run_proxyhunt("hunt", str(squid), str(combined))

    assert result.returncode == 0
    # Squid's native log has no user agent, and neither log has the request size the volume rules add up.
    assert "2 files could not show some rules' hits" in result.stdout
    assert "the file carries no SrcBytes" in result.stderr + result.stdout


def test_output_hard_link_to_input_refused(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", [combined_line("rclone/v1.68.2")])
    link = tmp_path / "findings.jsonl"
    os.link(log, link)
    original = log.read_bytes()

    result = run_proxyhunt("hunt", str(log), "--output", str(link))

    assert result.returncode == 2
    assert "is also an input log" in result.stderr
    assert log.read_bytes() == original


def test_output_and_rejects_same_file_refused(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", [combined_line("rclone/v1.68.2")])
    target = tmp_path / "out.jsonl"

    result = run_proxyhunt("hunt", str(log), "--output", str(target), "--rejects", str(target))

    assert result.returncode == 2
    assert "name the same file" in result.stderr
    assert not target.exists()


def test_rejects_hint_absent_when_written(tmp_path: Path) -> None:
    log = write_log(tmp_path / "access.log", [combined_line("rclone/v1.68.2"), "garbage"])

    result = run_proxyhunt("hunt", str(log), "--format", "combined", "--rejects", str(tmp_path / "rejects.jsonl"))

    assert "1 line rejected" in result.stderr
    assert "write them with --rejects" not in result.stderr


def test_unreadable_inputs_keep_earlier_output(tmp_path):
    # A mistyped path must not replace the findings file of an earlier run with an empty one.
    earlier = tmp_path / "findings.jsonl"
    earlier.write_text('{"earlier": true}\n')

    result = subprocess.run(
        [sys.executable, "-m", "proxyhunt", "hunt", str(tmp_path / "missing.log"), "--output", str(earlier)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert earlier.read_text() == '{"earlier": true}\n'
    assert "was not written, because no input could be read" in result.stderr


def test_ctrl_c_exits_130():
    # A hunt of standard input blocks until its writer sends data, so the
    # interrupt is sure to arrive while it reads.
    hunt = subprocess.Popen(
        [sys.executable, "-m", "proxyhunt", "hunt", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_interrupt,
    )
    hunt.stdin.write('10.0.0.1 - - [02/Nov/2026:00:00:00 +0000] "GET http://a.test/ HTTP/1.1" 200 1 "-" "curl/8"\n')
    hunt.stdin.flush()
    _wait_for_read_of_stdin(hunt.pid)

    # Standard input stays open until the hunt has ended, so the interrupt cannot race an end of input.
    hunt.send_signal(signal.SIGINT)
    hunt.wait(timeout=60)
    stderr = hunt.stderr.read()
    hunt.stdin.close()
    hunt.stdout.close()
    hunt.stderr.close()

    assert hunt.returncode == 130
    assert "Traceback" not in stderr
    assert "Interrupted." in stderr or "Aborted." in stderr


def _default_interrupt() -> None:
    """Give the child the default SIGINT action, which a shell's background job (as under nohup) has ignored.

    Python keeps an ignored SIGINT ignored, as a Unix program should, so
    without this the test would fail whenever the suite runs in the background.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# The number of the read system call on each machine that Linux reports in /proc.
READ_SYSCALLS = {"x86_64": 0, "aarch64": 63}


def _wait_for_read_of_stdin(pid: int) -> None:
    """Wait until the process's main thread is blocked in read(0, ...), as Linux shows in /proc."""
    syscall = Path(f"/proc/{pid}/syscall")
    number = READ_SYSCALLS.get(platform.machine())
    if not syscall.exists() or number is None:
        pytest.skip("needs Linux's /proc/PID/syscall on x86-64 or arm64 to know when the hunt reads")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # The line starts with the system call's number and its first argument, here file descriptor 0.
        if syscall.read_text().startswith(f"{number} 0x0 "):
            return
        time.sleep(0.05)
    pytest.fail("the hunt never blocked reading standard input")


def test_ctrl_c_while_importing_exits_130():
    # The interrupt lands while Python loads DuckDB's library, before the command line runs.
    hunt = subprocess.Popen(
        [sys.executable, "-m", "proxyhunt", "hunt", str(SAMPLES)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_interrupt,
    )
    maps = Path(f"/proc/{hunt.pid}/maps")
    if not maps.exists():
        hunt.kill()
        pytest.skip("needs Linux's /proc/PID/maps to know when DuckDB is being imported")
    deadline = time.monotonic() + 60
    while "duckdb" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.005)

    hunt.send_signal(signal.SIGINT)
    _, stderr = hunt.communicate(timeout=60)

    assert hunt.returncode == 130
    assert "Traceback" not in stderr
