"""Command-line interface: parse options, call the packages, map the outcome to an exit status."""

from __future__ import annotations

import logging
import os
import sys

import click
import duckdb
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from proxyhunt import __version__
from proxyhunt.formats import all_formats, format_names
from proxyhunt.formats.loader import expand_paths

EXIT_NO_FINDINGS = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

# Below this total input size a progress bar would only flicker.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024

HUNT_EPILOG = """\b
Exit status:
  0  no findings, and every input and rule was read
  1  findings (even if some inputs or rules could not be read)
  2  error: bad usage, or no findings while some input or rule could
     not be read, or no input carries the fields the rules need

\b
Examples:
  proxyhunt hunt samples/
  proxyhunt hunt /var/log/squid/access.log* --output findings.jsonl
  proxyhunt hunt http.log.gz --rules ./my-rules/ --no-default-rules
  zcat access.log.gz | proxyhunt hunt - --format combined
  proxyhunt hunt http.log --output - | jq .SrcIpAddr
"""


class _ProgressBar:
    """A byte-based progress bar on stderr, shown only for large inputs on a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled = enabled and total >= PROGRESS_MIN_BYTES
        self._progress = Progress(
            TextColumn("reading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("read", total=total)

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.enabled:
            self._progress.stop()

    def advance(self, byte_count: int) -> None:
        if self.enabled:
            self._progress.advance(self._task, byte_count)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    # The terminal report already lists every file-level problem.
    logging.getLogger("proxyhunt.formats.loader").setLevel(max(level, logging.ERROR))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="proxyhunt")
def cli() -> None:
    """Hunt Sigma detections, such as rclone exfiltration, in web-proxy logs."""


def main() -> None:
    """Run the command line; an unexpected error ends with a message and exit status 2, not a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_ERROR)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our output went away, as `proxyhunt hunt ... | head` does.
        sys.stderr.close()
        sys.exit(EXIT_ERROR)
    except Exception as error:  # noqa: BLE001 - the last line of defence for a command-line tool
        logging.getLogger("proxyhunt").debug("unexpected error", exc_info=True)
        click.echo(
            f"error: proxyhunt failed unexpectedly ({type(error).__name__}: {error}); "
            "run again with -vv to log the details, and report them",
            err=True,
        )
        sys.exit(EXIT_ERROR)


@cli.command(epilog=HUNT_EPILOG)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    metavar="PATH",
    help="Sigma rule file or directory (searched recursively) to add. Repeatable.",
)
@click.option("--no-default-rules", is_flag=True, help="Leave out the rules bundled with proxyhunt.")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(format_names()),
    help="Read every input in this format instead of detecting it from the content.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.jsonl",
    help="Write every finding to this file as JSON Lines, one object per finding; - writes them to stdout "
    "and the tables to stderr.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.jsonl",
    help="Write every rejected line, with its file, line number and reason, to this file as JSON Lines.",
)
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True, help="Findings shown in the terminal table.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the closing line and errors.")
@click.option("--no-color", is_flag=True, help="Print without colours (also set by the NO_COLOR variable).")
@click.option("--verbose", "-v", count=True, help="Log more detail to stderr; repeat for debug output.")
def hunt(
    paths: tuple[str, ...],
    rule_paths: tuple[str, ...],
    no_default_rules: bool,
    format_name: str | None,
    output: str | None,
    rejects_path: str | None,
    limit: int,
    quiet: bool,
    no_color: bool,
    verbose: int,
) -> None:
    """Run Sigma rules over proxy logs and print the findings.

    PATHS are log files, directories (read recursively), glob patterns, or -
    for standard input. Each file's format and compression are detected from
    its content. The bundled rule "Rclone Activity via Proxy" runs unless
    --no-default-rules is given.
    """
    from proxyhunt.hunt import hunt as run_hunt
    from proxyhunt.report import terminal

    _configure_logging(verbose, quiet)
    if no_default_rules and not rule_paths:
        raise click.UsageError("--no-default-rules leaves no rules to run; add rules with --rules PATH")

    files, _ = expand_paths(paths)
    _check_output_paths(files, {"--output": output, "--rejects": rejects_path})

    # With --output -, stdout carries the JSON Lines and the tables go to stderr.
    colourless = no_color or bool(os.environ.get("NO_COLOR"))
    console = Console(no_color=colourless, highlight=False, stderr=output == "-")
    error_console = Console(stderr=True, no_color=colourless, highlight=False)

    total = sum(os.path.getsize(path) for path in files if path != "-" and os.path.isfile(path))
    connection = duckdb.connect()
    with _ProgressBar(total, enabled=sys.stderr.isatty() and not quiet) as bar:
        result = run_hunt(
            list(paths),
            rule_paths=list(rule_paths),
            include_bundled=not no_default_rules,
            format_name=format_name,
            progress=bar.advance,
            connection=connection,
        )

    _write_outputs(result, connection, output, rejects_path)

    if not quiet:
        terminal.render_inputs(console, result)
        terminal.render_rules(console, result)
        if result.findings:
            terminal.render_findings(console, result, limit=limit)
            terminal.render_sources(console, result)
    terminal.render_warnings(error_console, result, rejects_written=bool(rejects_path))
    terminal.render_verdict(console, result)
    sys.exit(_exit_status(result))


def _check_output_paths(inputs: list[str], outputs: dict[str, str | None]) -> None:
    """Reject an output that is also an input, or another output, so that nothing is overwritten.

    Files are compared by device and inode, so a symbolic or hard link to an
    input log is caught as well as the same path.
    """
    input_files = {_file_identity(path) for path in inputs if path != "-"} - {None}
    seen: dict[tuple[int, int], str] = {}
    if outputs.get("--rejects") == "-":
        raise click.UsageError("--rejects - is not supported; give a file name")

    for option, target in outputs.items():
        if not target or target == "-":
            continue
        identity = _file_identity(target)
        if identity is None:
            identity = (-1, hash(os.path.realpath(target)))
        if identity in input_files:
            raise click.UsageError(f"{option} {target} is also an input log; choose another file name")
        if identity in seen:
            raise click.UsageError(f"{option} and {seen[identity]} name the same file; give each its own")
        seen[identity] = option


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _write_outputs(result, connection: duckdb.DuckDBPyConnection, output: str | None, rejects_path: str | None) -> None:
    from proxyhunt.report.jsonl import write_jsonl, write_rejects

    if output == "-":
        write_jsonl(result.findings, sys.stdout)
        sys.stdout.flush()
        output = None
    for option, target, write in (
        ("--output", output, lambda path: write_jsonl(result.findings, path)),
        ("--rejects", rejects_path, lambda path: write_rejects(connection, path)),
    ):
        if not target:
            continue
        try:
            write(target)
        except OSError as error:
            raise click.ClickException(
                f"cannot write {target}: {error.strerror}; choose a writable path for {option}"
            ) from None


def _exit_status(result) -> int:
    """Return 1 for findings, else 2 when an input or a requested rule failed, else 0."""
    if not any(rule.runnable for rule in result.compiled):
        click.echo("error: no rule could be run; fix the rule problems listed above", err=True)
        return EXIT_ERROR
    if result.findings:
        return EXIT_FINDINGS
    if result.failed_files or result.rule_problems:
        return EXIT_ERROR
    if result.blind:
        # No file carries any field the rules read: "no findings" would read as clean.
        return EXIT_ERROR
    return EXIT_NO_FINDINGS


@cli.command("formats")
def list_formats() -> None:
    """List the log formats that proxyhunt reads, with the names --format accepts."""
    for fmt in all_formats():
        click.echo(f"{fmt.name:12} {fmt.title}")
