"""The rclone command-line parser: Windows and POSIX splitting, flags, endpoints and recognition."""

from __future__ import annotations

import subprocess
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxyhunt.process.cmdline import split_posix, split_windows
from proxyhunt.process.event import ProcessEvent
from proxyhunt.process.rclone_cmdline import parse_command_line, parse_endpoint, parse_rclone
from proxyhunt.process.recognize import recognize_rclone


def make_event(command_line: str | None, image: str | None = None, original: str | None = None,
               argv: tuple[str, ...] | None = None) -> ProcessEvent:
    return ProcessEvent(
        time=datetime(2026, 11, 20, 1, 0, 0),
        hostname="WS01",
        process_id=100,
        command_line=command_line,
        image=image,
        original_file_name=original,
        user="CORP\\alice",
        parent_image=None,
        source_file="test.xml",
        source_line=1,
        source_kind="Sysmon 1",
        argv=argv,
    )


@pytest.mark.parametrize(
    ("command_line", "expected"),
    [
        (r'"C:\Program Files\rclone\rclone.exe" sync a b', [r"C:\Program Files\rclone\rclone.exe", "sync", "a", "b"]),
        (r'rclone.exe copy "C:\My Data\\" remote:x', ["rclone.exe", "copy", "C:\\My Data\\", "remote:x"]),
        (r'rclone.exe a\\\"b c', ["rclone.exe", 'a\\"b', "c"]),
        (r'rclone.exe "a""b" c', ["rclone.exe", 'a"b', "c"]),
        (r"rclone.exe C:\dir\file.txt", ["rclone.exe", r"C:\dir\file.txt"]),
        ('rclone.exe  --user-agent "Mozilla/5.0 (X11)"  ', ["rclone.exe", "--user-agent", "Mozilla/5.0 (X11)"]),
        (r'C:\a\"b c', [r'C:\a\"b', "c"]),
    ],
)
def test_split_windows_msvc_rules(command_line, expected):
    assert split_windows(command_line) == expected


@given(st.lists(st.text(alphabet='ab \\"\t:/.-', min_size=0, max_size=12), min_size=1, max_size=6))
def test_split_windows_inverts_list2cmdline(arguments):
    # subprocess.list2cmdline quotes by the Microsoft C runtime rules; the program
    # name is taken as given, so the property holds for the arguments after it.
    command_line = "rclone.exe " + subprocess.list2cmdline(arguments)
    assert split_windows(command_line)[1:] == arguments


def test_split_posix_quotes_and_unclosed_quote():
    assert split_posix("rclone copy '/srv/my files' remote:x") == ["rclone", "copy", "/srv/my files", "remote:x"]
    assert split_posix("rclone copy 'unclosed remote:x") == ["rclone", "copy", "'unclosed", "remote:x"]


def test_parse_sync_with_backup_dir_and_config():
    command = parse_command_line(
        r'"C:\Program Files\rclone\rclone.exe" sync D:\data nas-backup:nightly/ws01 '
        r'--backup-dir nas-backup:old/ws01 --config "C:\ProgramData\rclone\backup.conf" --transfers=8 -P'
    )
    assert command.subcommand == "sync"
    assert command.source.raw == r"D:\data"
    assert command.source.is_remote is False
    assert command.destination.remote == "nas-backup"
    assert command.destination.bucket == "nightly"
    assert command.destination.path == "nightly/ws01"
    assert command.config == r"C:\ProgramData\rclone\backup.conf"
    assert command.flags_text == r"--backup-dir=nas-backup:old/ws01 --config=C:\ProgramData\rclone\backup.conf --transfers=8 -P"


def test_flags_text_quotes_values_with_spaces():
    command = parse_rclone(["rclone", "copy", "/a", "b:c", "--config", "/etc/my rclone.conf"])
    assert command.flags_text == '--config="/etc/my rclone.conf"'


def test_parse_flags_before_subcommand():
    command = parse_rclone(["rclone", "--config", "/etc/rclone.conf", "-vv", "copy", "/srv", "s3:bucket/key"])
    assert command.subcommand == "copy"
    assert command.config == "/etc/rclone.conf"
    assert command.destination.bucket == "bucket"


def test_unknown_value_flag_resolved_by_arity():
    command = parse_rclone(["rclone", "copy", "--made-up-option", "42", "/srv", "s3:bucket"])
    assert command.arguments == ("/srv", "s3:bucket")
    assert command.flag_value("--made-up-option") == "42"
    assert command.notes == ()


def test_unknown_boolean_flag_keeps_positionals():
    command = parse_rclone(["rclone", "copy", "--made-up-switch", "/srv", "s3:bucket"])
    assert command.arguments == ("/srv", "s3:bucket")
    assert command.flag_value("--made-up-switch") is None


def test_unknown_flag_before_subcommand_is_a_value():
    command = parse_rclone(["rclone", "--made-up-option", "x", "sync", "/a", "b:c"])
    assert command.subcommand == "sync"
    assert command.flag_value("--made-up-option") == "x"


def test_double_dash_ends_flags():
    command = parse_rclone(["rclone", "copy", "--", "-odd-name", "remote:x"])
    assert command.source.raw == "-odd-name"
    assert command.destination.remote == "remote"


def test_user_agent_override():
    command = parse_command_line('rclone copy /a b:c --user-agent "Mozilla/5.0 (Windows NT 10.0)"')
    assert command.user_agent == "Mozilla/5.0 (Windows NT 10.0)"


def test_missing_destination_is_noted():
    command = parse_rclone(["rclone", "copy", "/only-source"])
    assert command.destination is None
    assert command.notes == ("'copy' takes 2 arguments but 1 were found",)


@pytest.mark.parametrize(
    ("text", "windows", "remote", "bucket"),
    [
        ("s3:bucket/dir/file", False, "s3", "bucket"),
        ("mega:", False, "mega", None),
        (r"C:\data", True, None, None),
        ("C:data", True, None, None),
        ("c:bucket", False, "c", "bucket"),
        (r"\\fs01\share", True, None, None),
        ("https://example.com/x", False, None, None),
        ("/srv/data", False, None, None),
        (":s3,provider=AWS,access_key_id=AK:bucket/x", False, ":s3", "bucket"),
        ("my remote:bucket", False, "my remote", "bucket"),
        ("gdrive,shared_with_me:docs", False, "gdrive", "docs"),
    ],
)
def test_parse_endpoint(text, windows, remote, bucket):
    endpoint = parse_endpoint(text, windows)
    assert endpoint.remote == remote
    assert endpoint.bucket == bucket


def test_credential_flags_and_connection_string():
    command = parse_rclone(
        ["rclone", "copy", "/a", ":ftp,host=ftp.example.org,user=bob,pass=xyz:up", "--ftp-pass", "p", "--user", "u"]
    )
    assert command.credential_flags == ("--ftp-pass", "--user", ":ftp,user", ":ftp,pass")


def test_credential_flags_ignore_ordinary_flags():
    command = parse_rclone(["rclone", "copy", "/a", "s3:b", "--transfers", "4", "--s3-chunk-size", "64M"])
    assert command.credential_flags == ()


def test_recognize_by_original_file_name_when_renamed():
    event = make_event(r"svc-helper.exe copy C:\x mega:loot", image=r"C:\Temp\svc-helper.exe", original="rclone.exe")
    process = recognize_rclone(event)
    assert process is not None
    assert process.recognized_by == "OriginalFileName rclone.exe"
    assert process.command.destination.remote == "mega"


def test_recognize_renamed_binary_by_shape():
    event = make_event(r"C:\Temp\notepad2.exe copy C:\x mega:loot --transfers 16", image=r"C:\Temp\notepad2.exe")
    process = recognize_rclone(event)
    assert process is not None
    assert process.recognized_by == "command-line shape (subcommand copy, remote mega:)"


def test_recognize_renamed_binary_by_flags_only():
    event = make_event("/tmp/.x sync /srv /mnt/other --fast-list --transfers 8", image="/tmp/.x")
    process = recognize_rclone(event)
    assert process is not None
    assert process.recognized_by == "command-line shape (subcommand sync with rclone flags)"


def test_recognize_by_argv_program_name():
    event = make_event(None, image=None, argv=("/usr/local/bin/rclone", "copy", "/a", "b:c"))
    process = recognize_rclone(event)
    assert process is not None
    assert process.recognized_by == "program name on the command line"


@pytest.mark.parametrize(
    ("command_line", "image"),
    [
        ("azcopy copy a https://acct.blob.core.windows.net/c", "/usr/bin/azcopy"),
        ("cmd.exe /c rclone.exe copy C:\\x mega:y", r"C:\Windows\System32\cmd.exe"),
        ("git config user.name x", "/usr/bin/git"),
        ("robocopy C:\\a D:\\b /MIR", r"C:\Windows\System32\robocopy.exe"),
        ("tool.exe copy C:\\a D:\\b", r"C:\tools\tool.exe"),
    ],
)
def test_other_programs_not_recognized(command_line, image):
    assert recognize_rclone(make_event(command_line, image=image)) is None
