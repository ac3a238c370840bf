"""``proxyhunt convert`` from the command line: output files, rule text in comments and messages, and option checks.

Each test runs the real CLI in-process with click's CliRunner, and the SQL
output runs as a script in a real DuckDB.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from proxyhunt.cli import cli
from proxyhunt.schema import create_table_sql

TARGETS = ("kql", "spl", "esql", "sparksql", "duckdbsql")
# The seed rclone rule alone, for tests of single-rule output; the bundled rclone pack adds more rules.
RCLONE_RULE = str(Path(__file__).parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml")
# A title whose line break would end a comment and run the next line as query text.
INJECTED_TITLE = "Evil\\nDROP TABLE websession;\\r\\u2028-- x\\u0085y"
# An OSC sequence that sets the terminal window title, then a BEL.
OSC_TITLE = "Title \\e]0;pwned\\a done"


def write_rule(folder: Path, name: str, title: str, detection: str = "sel:\n        c-useragent: 'x'") -> Path:
    path = folder / name
    path.write_text(
        f'title: "{title}"\nlogsource:\n    category: proxy\ndetection:\n    {detection}\n    condition: sel\n',
        encoding="utf-8",
    )
    return path


def run(*arguments: str):
    return CliRunner().invoke(cli, ["convert", *arguments], catch_exceptions=False)


def test_output_rejects_rules_file(tmp_path: Path) -> None:
    rule = write_rule(tmp_path, "rule.yml", "Rule")
    before = rule.read_text(encoding="utf-8")
    result = run("--target", "kql", "--rules", str(rule), "--output", str(rule))
    assert result.exit_code == 2
    assert f"--output {rule} is also the --rules file {rule}" in result.output
    assert rule.read_text(encoding="utf-8") == before


def test_output_rejects_file_in_rules_folder(tmp_path: Path) -> None:
    rule = write_rule(tmp_path, "rule.yml", "Rule")
    link = tmp_path.parent / f"{tmp_path.name}-link.yml"
    link.symlink_to(rule)
    before = rule.read_text(encoding="utf-8")
    # A symbolic link to a file under the --rules folder is the same file.
    result = run("--target", "kql", "--rules", str(tmp_path), "--output", str(link))
    assert result.exit_code == 2
    assert "is also the --rules file" in result.output
    assert rule.read_text(encoding="utf-8") == before


def test_output_rejects_lists_file(tmp_path: Path) -> None:
    lists = tmp_path / "lists.yml"
    lists.write_text("backup_hosts: [backup.example.com]\n", encoding="utf-8")
    hard_link = tmp_path / "hard.yml"
    os.link(lists, hard_link)
    result = run("--target", "kql", "--lists", str(lists), "--output", str(hard_link))
    assert result.exit_code == 2
    assert f"is also the --lists file {lists}" in result.output
    assert lists.read_text(encoding="utf-8") == "backup_hosts: [backup.example.com]\n"


def test_output_through_symlink(tmp_path: Path) -> None:
    target = tmp_path / "queries.kql"
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "latest.kql"
    link.symlink_to(target)
    result = run("--target", "kql", "--no-default-rules", "--rules", RCLONE_RULE, "--output", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8").startswith("imWebSession\n")


def test_output_to_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "queries.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    result = run("--target", "kql", "--no-default-rules", "--rules", RCLONE_RULE, "--output", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received == ['imWebSession\n| where HttpUserAgent startswith "rclone/v"\n']


@pytest.mark.parametrize("target", TARGETS)
def test_comment_line_break_escaped(tmp_path: Path, target: str) -> None:
    write_rule(tmp_path, "evil.yml", INJECTED_TITLE)
    write_rule(tmp_path, "other.yml", "Other")
    result = run("--target", target, "--no-default-rules", "--rules", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert not any(line.startswith("DROP") for line in lines)
    assert any("Evil\\x0aDROP TABLE websession;\\x0d\\u2028-- x\\x85y" in line for line in lines)
    for separator in ("\r", "\u2028", "\x85"):
        assert separator not in result.stdout


def test_duckdb_script_runs_whole(tmp_path: Path) -> None:
    write_rule(tmp_path, "evil.yml", INJECTED_TITLE)
    write_rule(tmp_path, "other.yml", "Other")
    script = tmp_path / "queries.sql"
    result = run("--target", "duckdbsql", "--no-default-rules", "--rules", RCLONE_RULE, "--rules", str(tmp_path), "--output", str(script))
    assert result.exit_code == 0, result.output
    text = script.read_text(encoding="utf-8")
    assert text.count(";\n") == 3

    connection = duckdb.connect()
    connection.execute(create_table_sql())
    connection.execute("INSERT INTO websession (HttpUserAgent) VALUES ('x')")
    # Every statement runs; without ';' between them DuckDB rejects the script.
    connection.execute(text)
    assert connection.execute("SELECT count(*) FROM websession").fetchone() == (1,)


def test_single_sql_query_ends_with_semicolon() -> None:
    result = run("--target", "duckdbsql")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(";\n")


def test_terminal_escapes_in_messages(tmp_path: Path) -> None:
    # The cookie field has no KQL column, so the rule fails and its title is printed in the error line.
    write_rule(tmp_path, "osc.yml", OSC_TITLE, detection="sel:\n        cs-cookie: 'x'")
    result = run("--target", "kql", "--no-default-rules", "--rules", str(tmp_path))
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr
    assert "\x07" not in result.stderr
    assert "Title \\x1b]0;pwned\\x07 done" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--target", "duckdbsql", "--table", "websession; DROP TABLE x"), "invalid --table"),
        (("--target", "sparksql", "--table", "lake.web-session"), "invalid --table"),
        (("--target", "esql", "--index", "logs-* | DROP x"), "invalid --index"),
        (("--target", "esql", "--index", "Logs"), "invalid --index"),
        (("--target", "kql", "--asim-parameters", "--query-period", "1h) | take 1 //"), "invalid --query-period"),
        (("--target", "kql", "--asim-parameters", "--query-period", "1h\n| take 1"), "invalid --query-period"),
        (("--target", "kql", "--asim-parameters", "--query-period", "\u0661h"), "invalid --query-period"),
        (("--target", "kql", "--arm", "--query-frequency", "2h", "--query-period", "1h"), "shorter than --query-frequency"),
        (("--target", "kql", "--arm", "--query-period", "0m"), "--query-period 0m is outside Sentinel's limits"),
        (("--target", "kql", "--sentinel-analytic", "--query-period", "99999d"), "outside Sentinel's limits"),
    ],
)
def test_invalid_options_rejected(arguments: tuple[str, ...], message: str) -> None:
    result = run(*arguments)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--target", "duckdbsql", "--table", "lake.websession"), "FROM lake.websession"),
        (("--target", "sparksql", "--table", "main.web.websession"), "FROM main.web.websession"),
        (("--target", "esql", "--index", "logs-squid-*,remote:proxy.logs-*"), "FROM logs-squid-*,remote:proxy.logs-*"),
    ],
)
def test_valid_table_and_index(arguments: tuple[str, ...], expected: str) -> None:
    result = run(*arguments, "--no-default-rules", "--rules", RCLONE_RULE)
    assert result.exit_code == 0, result.output
    assert expected in result.stdout


def test_kql_placeholder_name_not_identifier(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(
        "title: Placeholder\nlogsource:\n    category: proxy\ndetection:\n    sel:\n"
        "        cs-host|expand: '%bad-name%'\n    condition: sel\n",
        encoding="utf-8",
    )
    result = run("--target", "kql", "--no-default-rules", "--rules", str(rule), "--placeholders", "let")
    assert result.exit_code == 2
    assert "placeholder %bad-name% is not a KQL identifier" in result.stderr
    # The name reaches the output only in the comment that gives the reason, never as query text.
    assert [line for line in result.stdout.splitlines() if "bad-name" in line] == [
        "// Not converted: Placeholder: cannot be converted to KQL for Microsoft Sentinel (ASIM imWebSession): "
        "placeholder %bad-name% is not a KQL identifier, so it cannot name a let "
        "list or watchlist; use --placeholders expand"
    ]


def test_esql_rejected_correlations_leave_others() -> None:
    result = run("--target", "esql")
    # A rule that the target cannot express gives exit status 2, as for a single rejected rule.
    assert result.exit_code == 2

    correlations = (
        "Large Upload to Cloud Storage From One Source",
        "Sustained Upload Through CONNECT Tunnels by a Go Program",
        "Rclone Mega Chunked Upload",
    )
    for title in correlations:
        assert f"({title}): cannot be converted to Elastic ES|QL" in result.stderr, title
        assert f"// Not converted: {title} (" in result.stdout, title
    assert "sliding time windows" in result.stdout

    # Every detection rule is still converted, the seed rule among them.
    assert "// Rclone Activity via Proxy (2c03648b-e081-41a5-b9fb-7d854a915091)\nFROM logs-*\n" in result.stdout
    queries = [block for block in result.stdout.split("\n\n") if "\nFROM logs-*" in block]
    # The seed rule and the pack's eight detection rules; the three helper rules are left out.
    assert len(queries) == 9
    assert result.stdout.count("// Not converted: ") == len(correlations)

    # Their helper rules are not written alone, where they would alert on every event the correlation counts.
    assert "// Request to a Cloud Storage Host (" not in result.stdout
    assert "(Request to a Cloud Storage Host): only feeds correlation rules" in result.stderr
