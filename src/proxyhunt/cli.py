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
from proxyhunt.formats import all_formats
from proxyhunt.formats.loader import custom_formats, expand_paths, forcible_format_names

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
  130  interrupted with Ctrl-C

\b
Examples:
  proxyhunt hunt samples/
  proxyhunt hunt /var/log/squid/access.log* --output findings.jsonl
  proxyhunt hunt http.log.gz --rules ./my-rules/ --no-default-rules
  zcat access.log.gz | proxyhunt hunt - --format combined
  proxyhunt hunt http.log --output - | jq .SrcIpAddr
  proxyhunt hunt u_ex*.log --format w3c
  proxyhunt hunt access.log --squid-logformat 'logformat ua %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"'
  proxyhunt hunt export.csv --map export-mapping.yaml
  proxyhunt hunt samples/ --html report.html --csv findings.csv
  proxyhunt hunt samples/ --working-hours 'Mon-Fri 07:00-19:00 Europe/Berlin' --lists examples/lists.yml
  proxyhunt hunt access.log --no-prefilter --quiet   # count rejected lines in the whole file
  proxyhunt hunt /var/log/squid/access.log.1 --memory-limit 2GB   # more memory before DuckDB spills to disk
  proxyhunt hunt samples/squid-combined.log --rules my-rules/ --lists examples/lists.yml
  proxyhunt hunt examples/process/proxy-rclone-jobs.log --process-logs examples/process/endpoint/ \\
      --assets examples/process/assets.csv --lists examples/lists.yml --exclusions all-safe --show-suppressed
  proxyhunt hunt access.log --process-logs sysmon.evtx --process-window 24h --clock-skew 5m --exclusions scheduled-backup
  proxyhunt normalize /var/log/squid/ --to lake/websession && proxyhunt hunt lake/websession --since 2026-11-01
  proxyhunt hunt lake/websession --engine spark --master 'local[4]' --since 2026-11-01 --until 2026-11-30
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


def _rule_list_options(command):
    """Add --no-default-rules and --lists, which choose the rules and their placeholder values, to a command."""
    command = click.option(
        "--lists",
        "lists_path",
        type=click.Path(dir_okay=False),
        metavar="FILE.yml",
        help="YAML file that maps each |expand placeholder name to its list of values (Sigma strings, * and ? "
        "are wildcards), and each correlation threshold name to one number or timespan. Each name replaces the "
        "bundled default of that name.",
    )(command)
    return click.option("--no-default-rules", is_flag=True, help="Leave out the rules bundled with proxyhunt.")(command)


def _format_options(command):
    """Add --format, --squid-logformat and --map, which choose how inputs are read, to a command."""
    options = [
        click.option(
            "--format",
            "format_name",
            type=click.Choice(forcible_format_names()),
            help="Read every input in this format instead of detecting it from the content.",
        ),
        click.option(
            "--squid-logformat",
            metavar="LINE",
            help="Read Squid logs written with this logformat: the squid.conf line (the leading "
            "'logformat NAME' is optional) or a predefined format name (squid, common, combined, referrer, useragent).",
        ),
        click.option(
            "--map",
            "map_path",
            type=click.Path(dir_okay=False),
            metavar="FILE.yaml",
            help="Read CSV, TSV or JSON Lines files with the columns this YAML mapping file assigns to WebSession columns.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _check_format_descriptions(squid_logformat: str | None, map_path: str | None, log_notes: bool = True) -> None:
    """Raise a usage error naming the problem when --squid-logformat or --map cannot be read.

    With ``log_notes``, remarks such as ignored format codes are logged as warnings.
    """
    from proxyhunt.formats.mapped import MappingError
    from proxyhunt.formats.squid_logformat import LogformatError

    try:
        formats = custom_formats(squid_logformat, map_path)
    except LogformatError as error:
        raise click.BadParameter(str(error), param_hint="--squid-logformat") from None
    except MappingError as error:
        raise click.BadParameter(str(error), param_hint="--map") from None
    for fmt in formats if log_notes else []:
        for note in getattr(fmt, "notes", []):
            logging.getLogger("proxyhunt.formats").warning("%s: %s", fmt.title, note)


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


class _Duration(click.ParamType):
    """A duration option such as 90s, 15m, 12h or 1d, converted to a timedelta."""

    name = "duration"

    def convert(self, value, param, ctx):
        from datetime import timedelta

        from proxyhunt.tuning.durations import parse_duration

        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def _tuning_options(command):
    """Add the exclusion and process-correlation options to a command."""
    options = [
        click.option(
            "--exclusions",
            multiple=True,
            metavar="NAMES",
            help="Bundled exclusions (Sigma filters) to enable, comma-separated: scheduled-backup, ci-cd, admin-sync, "
            "embedded-tool, user-transfer, proxy-known-sources, proxy-known-users, proxy-known-destinations, "
            "proxy-nightly-window, or all-safe for those that require a known destination (all but user-transfer, "
            "proxy-known-sources and proxy-known-users). Their placeholders come from --lists.",
        ),
        click.option(
            "--process-logs",
            multiple=True,
            metavar="PATH",
            help="Process-creation log file or directory (Sysmon EVTX, XML or JSON, Security 4688, Defender "
            "DeviceProcessEvents, ASIM imProcessCreate, auditd) whose rclone processes are joined to the findings. "
            "Repeatable.",
        ),
        click.option(
            "--assets",
            "assets_path",
            type=click.Path(dir_okay=False),
            metavar="FILE.csv",
            help="CSV with hostname and ip columns, tying proxy client addresses to the hosts in the process logs.",
        ),
        click.option(
            "--process-window",
            type=_Duration(),
            default="12h",
            show_default=True,
            help="How long before a request its rclone process may have started (units: s, m, h, d).",
        ),
        click.option(
            "--clock-skew",
            type=_Duration(),
            default="2m",
            show_default=True,
            help="How far the proxy's and the endpoints' clocks may disagree (units: s, m, h, d).",
        ),
        click.option(
            "--show-suppressed",
            is_flag=True,
            help="Also list the suppressed findings, each with the filter and the values that matched.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _time_bound(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """Check a --since or --until value as the hunt will read it."""
    from proxyhunt.formats.parquet import TimeRange

    if value is not None:
        try:
            TimeRange.parse(value if parameter.name == "since" else None, value if parameter.name == "until" else None)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return value


def _working_hours(context: click.Context, parameter: click.Parameter, value: str | None):
    """Read a --working-hours value, or raise a usage error that names the part at fault."""
    from proxyhunt.tuning.triage import WorkingHoursError, parse_working_hours

    if value is None:
        return None
    try:
        return parse_working_hours(value)
    except WorkingHoursError as error:
        raise click.BadParameter(str(error)) from None


def _engine_options(command):
    """Add --engine, --master, --since and --until, which choose where and over which time the hunt runs."""
    options = [
        click.option(
            "--engine",
            type=click.Choice(["duckdb", "spark"]),
            default="duckdb",
            show_default=True,
            help="Where the rules run: DuckDB on this machine, or Apache Spark over WebSession datasets "
            "(Parquet from proxyhunt normalize, JSON Lines, Delta). Spark needs pip install 'proxyhunt[spark]'.",
        ),
        click.option(
            "--master",
            metavar="URL",
            help="Spark master URL for a new Spark session, such as local[4], spark://host:7077 or yarn "
            "(default: spark-submit's --master, else local[*]).",
        ),
        click.option(
            "--since",
            metavar="TIME",
            callback=_time_bound,
            help="Hunt only events at or after this UTC date or time (2026-11-03, 2026-11-03T14:00:00Z); "
            "partitions of a normalized dataset before it are not read.",
        ),
        click.option(
            "--until",
            metavar="TIME",
            callback=_time_bound,
            help="Hunt only events before this UTC time, or up to the end of this UTC date (2026-11-30).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _check_time_range(since: str | None, until: str | None) -> None:
    """Raise a usage error when --since and --until are each valid but name an empty range."""
    from proxyhunt.formats.parquet import TimeRange

    try:
        TimeRange.parse(since, until)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _check_engine(engine: str, master: str | None) -> None:
    """Raise an error with the install command when --engine spark cannot start; reject --master without it."""
    if engine != "spark":
        if master:
            raise click.UsageError("--master applies only to --engine spark")
        return
    from proxyhunt.engines.spark import SparkEngineError, import_pyspark

    try:
        import_pyspark()
    except SparkEngineError as error:
        raise click.ClickException(str(error)) from None


@cli.command(epilog=HUNT_EPILOG)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--rules",
    "rule_paths",
    multiple=True,
    metavar="PATH",
    help="Sigma rule, filter or correlation file, or a directory of them (searched recursively), to add. Repeatable.",
)
@_rule_list_options
@click.option(
    "--working-hours",
    metavar="'DAYS HH:MM-HH:MM [ZONE]'",
    callback=_working_hours,
    help="The site's working hours, such as 'Mon-Fri 07:00-19:00 Europe/Berlin' (IANA time zone, default UTC); "
    "findings outside them get one step higher triage priority. Default: no time adjustment.",
)
@_format_options
@_tuning_options
@_engine_options
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
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.html",
    help="Write a self-contained HTML report (sortable findings, upload charts, rules, suppressions, inputs) "
    "that opens offline.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.csv",
    help="Write every finding to this file as CSV that is safe to open in Excel or LibreOffice.",
)
@click.option(
    "--no-prefilter",
    is_flag=True,
    help="Parse every line, even in Squid, combined and Zeek TSV logs where the rules' literals allow skipping "
    "lines that cannot match; the findings are the same, and rejected lines are then counted in the whole file "
    "(--rejects does the same).",
)
@click.option(
    "--memory-limit",
    default="512MB",
    show_default=True,
    metavar="SIZE",
    help="Memory that DuckDB may use for the parsed events (such as 512MB or 4GB); beyond it, they spill to a "
    "temporary directory that is removed afterwards.",
)
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True, help="Findings shown in the terminal table.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the closing line, warnings and errors.")
@click.option("--no-color", is_flag=True, help="Print without colours (also set by the NO_COLOR variable).")
@click.option("--verbose", "-v", count=True, help="Log more detail to stderr; repeat for debug output.")
def hunt(
    paths: tuple[str, ...],
    rule_paths: tuple[str, ...],
    no_default_rules: bool,
    lists_path: str | None,
    format_name: str | None,
    squid_logformat: str | None,
    map_path: str | None,
    output: str | None,
    rejects_path: str | None,
    html_path: str | None,
    csv_path: str | None,
    exclusions: tuple[str, ...],
    process_logs: tuple[str, ...],
    assets_path: str | None,
    process_window,
    clock_skew,
    show_suppressed: bool,
    engine: str,
    master: str | None,
    since: str | None,
    until: str | None,
    no_prefilter: bool,
    working_hours,
    memory_limit: str,
    limit: int,
    quiet: bool,
    no_color: bool,
    verbose: int,
) -> None:
    """Run Sigma rules over proxy logs and print the findings.

    PATHS are log files, directories (read recursively), glob patterns, or -
    for standard input. Each file's format and compression are detected from
    its content. The bundled rules run unless --no-default-rules is given:
    "Rclone Activity via Proxy" and the rclone rule pack (docs/rclone.md).
    """
    from proxyhunt.engines.spark import SparkEngineError
    from proxyhunt.hunt import hunt as run_hunt
    from proxyhunt.hunt import open_database
    from proxyhunt.memory_limit import MemoryLimitError
    from proxyhunt.report import terminal
    from proxyhunt.report.text import safe_text

    _configure_logging(verbose, quiet)
    _check_format_descriptions(squid_logformat, map_path)
    if no_default_rules and not rule_paths:
        raise click.UsageError("--no-default-rules leaves no rules to run; add rules with --rules PATH")
    _check_exclusions(exclusions)
    _check_lists(lists_path)
    if engine == "spark":
        raw_options = {"--format": format_name, "--squid-logformat": squid_logformat, "--map": map_path, "--rejects": rejects_path}
        used_options = [option for option, value in raw_options.items() if value]
        if used_options:
            verb = "applies" if len(used_options) == 1 else "apply"
            raise click.UsageError(
                f"{', '.join(used_options)} {verb} only to raw logs, and --engine spark reads WebSession datasets; "
                "convert the logs with proxyhunt normalize (which takes these options) and hunt the dataset"
            )
    _check_engine(engine, master)
    _check_time_range(since, until)

    files, _ = expand_paths(paths)
    outputs = {"--output": output, "--rejects": rejects_path, "--html": html_path, "--csv": csv_path}
    _check_output_paths(files, outputs)

    # With --output -, stdout carries the JSON Lines and the tables go to stderr.
    colourless = no_color or bool(os.environ.get("NO_COLOR"))
    console = Console(no_color=colourless, highlight=False, stderr=output == "-")
    error_console = Console(stderr=True, no_color=colourless, highlight=False)

    total = sum(os.path.getsize(path) for path in files if path != "-" and os.path.isfile(path))
    try:
        connection = open_database(memory_limit)
    except MemoryLimitError as error:
        raise click.UsageError(str(error)) from None
    with _ProgressBar(total, enabled=sys.stderr.isatty() and not quiet) as bar:
        try:
            result = run_hunt(
                list(paths),
                rule_paths=list(rule_paths),
                include_bundled=not no_default_rules,
                lists_path=lists_path,
                format_name=format_name,
                squid_logformat=squid_logformat,
                map_path=map_path,
                progress=bar.advance,
                connection=connection,
                process_logs=list(process_logs),
                assets_path=assets_path,
                process_window=process_window,
                clock_skew=clock_skew,
                exclusions=list(exclusions),
                engine=engine,
                master=master,
                since=since,
                until=until,
                prefilter=not (no_prefilter or rejects_path),
                working_hours=working_hours,
            )
        except SparkEngineError as error:
            # Spark could not start or read the dataset: a problem with the setup, not a defect.
            raise click.ClickException(str(error)) from None

    if result.files and all(report.error and not report.lines_read for report in result.files):
        # Nothing was read, as after a mistyped path: keep the files of an earlier run.
        for option, target in outputs.items():
            if target and target != "-":
                message = f"note: {option} {safe_text(target)} was not written, because no input could be read"
                error_console.print(message, markup=False)
    else:
        _write_outputs(result, connection, output, rejects_path)
        _write_reports(result, html_path, csv_path)

    if not quiet:
        terminal.render_inputs(console, result)
        terminal.render_rules(console, result)
        if result.findings:
            terminal.render_findings(console, result, limit=limit, show_suppressed=show_suppressed)
            terminal.render_sources(console, result)
    terminal.render_warnings(error_console, result, rejects_written=bool(rejects_path))
    _echo_process_correlation(result, quiet)
    terminal.render_verdict(console, result)
    sys.exit(_exit_status(result))


def _check_output_paths(inputs: list[str], outputs: dict[str, str | None]) -> None:
    """Reject an output that is also an input, or another output, so that nothing is overwritten.

    Files are compared by device and inode, so a symbolic or hard link to an
    input log is caught as well as the same path.
    """
    input_files = {_file_identity(path) for path in inputs if path != "-"} - {None}
    seen: dict[tuple[int, int], str] = {}
    for option in ("--rejects", "--html", "--csv"):
        if outputs.get(option) == "-":
            raise click.UsageError(f"{option} - is not supported; give a file name")

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


def _write_reports(result, html_path: str | None, csv_path: str | None) -> None:
    from proxyhunt.report.csv import write_csv
    from proxyhunt.report.html import write_html

    for option, target, write in (("--html", html_path, write_html), ("--csv", csv_path, write_csv)):
        if not target:
            continue
        try:
            write(result, target)
        except OSError as error:
            raise click.ClickException(
                f"cannot write {target}: {error.strerror}; choose a writable path for {option}"
            ) from None


def _check_lists(lists_path: str | None) -> None:
    """Raise a usage error naming the file and line when the --lists file cannot be used."""
    from proxyhunt.rules.placeholders import PlaceholderListsError, load_lists

    if lists_path is None:
        return
    try:
        load_lists(lists_path)
    except PlaceholderListsError as error:
        raise click.BadParameter(str(error), param_hint="--lists") from None


def _check_exclusions(exclusions: tuple[str, ...]) -> None:
    """Raise a usage error for an --exclusions name that is not bundled."""
    from proxyhunt.tuning.exclusions import UnknownExclusionError, resolve_exclusions

    try:
        resolve_exclusions(list(exclusions))
    except UnknownExclusionError as error:
        raise click.UsageError(f"--exclusions: {error}") from None


def _echo_process_correlation(result, quiet: bool) -> None:
    """Print what the process logs contributed: one line per file and the correlation counts, on stderr."""
    correlation = result.process_correlation
    if correlation is None:
        return
    for message in correlation.errors():
        click.echo(f"error: {message}", err=True)
    if not quiet:
        for line in correlation.describe():
            click.echo(line, err=True)


def _exit_status(result) -> int:
    """Return 1 for alerts, else 2 when an input or a requested rule failed, else 0.

    Findings that Sigma filters suppressed are not alerts.
    """
    if not any(rule.runnable for rule in result.compiled):
        click.echo("error: no rule could be run; fix the rule problems listed above", err=True)
        return EXIT_ERROR
    if result.alerts:
        return EXIT_FINDINGS
    if result.failed_files or result.rule_problems:
        return EXIT_ERROR
    if result.process_correlation and result.process_correlation.failed_files:
        return EXIT_ERROR
    if result.blind:
        # No file carries any field the rules read: "no findings" would read as clean.
        return EXIT_ERROR
    return EXIT_NO_FINDINGS


RULES_CHECK_EPILOG = """\b
Exit status:
  0  every rule, filter and correlation can run (skipped ones included)
  1  at least one cannot run, or runs only in part
  2  bad usage

\b
Examples:
  proxyhunt rules check my-rules/
  proxyhunt rules check ./sigma/rules/web/proxy_generic/ mf_backup_hosts.yml
  proxyhunt rules check mr_upload_bursts.yml --no-default-rules
  proxyhunt rules check my-filters/ --lists examples/lists.yml
"""


@cli.group("rules")
def rules_group() -> None:
    """Check Sigma rules, filters and correlation rules, and test rules against their example lines."""


@rules_group.command("check", epilog=RULES_CHECK_EPILOG)
@click.argument("rule_paths", nargs=-1, required=True, metavar="PATH...")
@_rule_list_options
def check_rules_command(rule_paths: tuple[str, ...], no_default_rules: bool, lists_path: str | None) -> None:
    """List every rule, filter and correlation rule under PATH with its status and the reason.

    The status is "ready", "not runnable", "partly runnable" (a filter that
    names some rules that cannot be found) or "skipped" (not a proxy rule, or
    an id already loaded). The output is tab-separated, one entry per line.
    """
    from proxyhunt.check import check_rules, format_check

    _check_lists(lists_path)
    check = check_rules(list(rule_paths), include_bundled=not no_default_rules, lists_path=lists_path)
    *table, summary = format_check(check)
    for line in table:
        click.echo(line)
    # The count goes to stderr, so that stdout stays one tab-separated table for cut or a spreadsheet.
    click.echo(summary, err=True)
    sys.exit(1 if check.failed else 0)


RULES_TEST_EPILOG = """\b
Each rule file X.yml is tested with X.examples.yml beside it: every line
under match must be flagged by a rule of X.yml, no line under no_match may
be, and each case must give the findings it expects. Output: one
tab-separated row per rule file and one per failing example, naming the
examples file and line; the counts go to stderr.

\b
Exit status:
  0  every example of every rule file passed
  1  an example failed, or a rule file has no examples file
  2  bad usage

\b
Examples:
  proxyhunt rules test
  proxyhunt rules test examples/rules/ --no-default-rules
  proxyhunt rules test examples/rules/proxy_ua_backup_tool.yml --no-default-rules
  proxyhunt rules test --lists examples/lists.yml
  proxyhunt rules test examples/rules/ --junit rule-tests.xml
"""


@rules_group.command("test", epilog=RULES_TEST_EPILOG)
@click.argument("rule_paths", nargs=-1, metavar="[PATH...]")
@_rule_list_options
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.xml",
    help="Also write the results as JUnit XML, one test case per rule file, for CI test reports.",
)
@click.option("--verbose", "-v", count=True, help="Log more detail to stderr; repeat for debug output.")
def test_rules_command(
    rule_paths: tuple[str, ...], no_default_rules: bool, lists_path: str | None, junit_path: str | None, verbose: int
) -> None:
    """Run each rule file's example lines through a hunt and report the lines it misses or wrongly flags.

    PATH is a rule file, its examples file, or a directory searched
    recursively. The bundled rules are tested too, unless
    --no-default-rules is given.
    """
    from proxyhunt.report.ruletest import format_report, write_junit
    from proxyhunt.ruletest import test_rules

    _configure_logging(verbose, quiet=False)
    if no_default_rules and not rule_paths:
        raise click.UsageError("--no-default-rules leaves no rules to test; name rule files or directories")
    _check_lists(lists_path)
    report = test_rules(list(rule_paths), include_bundled=not no_default_rules, lists_path=lists_path)
    if junit_path:
        try:
            write_junit(report, junit_path)
        except OSError as error:
            raise click.ClickException(
                f"cannot write {junit_path}: {error.strerror}; choose a writable path for --junit"
            ) from None
    *table, summary = format_report(report)
    for line in table:
        click.echo(line)
    # The count goes to stderr, so that stdout stays one tab-separated table, as rules check prints it.
    click.echo(summary, err=True)
    sys.exit(1 if report.failed else 0)


CONVERT_EPILOG = """\b
Exit status:
  0  every rule was converted
  2  a rule could not be converted (the others are still written, and the rule
     is named on stderr and in a comment in the output), or bad usage

\b
Examples:
  proxyhunt convert --target kql
  proxyhunt convert --target spl --rules ./sigma/rules/web/proxy_generic/
  proxyhunt convert --target kql --rules filters/ --lists lists.yml
  proxyhunt convert --target kql --rules filters/ --lists lists.yml --placeholders let
  proxyhunt convert --target kql --rules filters/ --placeholders watchlist
  proxyhunt convert --target kql --exclusions proxy-known-destinations --lists lists.yml
  proxyhunt convert --target kql --asim-parameters --query-period 1h
  proxyhunt convert --target kql --sentinel-analytic --output rclone.yaml
  proxyhunt convert --target kql --arm --query-frequency 15m --output rules.json
  proxyhunt convert --target kql --arm --query-frequency 15m --query-period 2h --output rules.json
  proxyhunt convert --target esql --index 'logs-squid-*'
  proxyhunt convert --target sparksql --table lake.websession
"""


@cli.command("convert", epilog=CONVERT_EPILOG)
@click.option("--target", "-t", required=True, type=click.Choice(["kql", "spl", "esql", "sparksql", "duckdbsql"]),
              help="Query language: KQL (Sentinel ASIM), SPL (CIM Web), ES|QL (ECS), Spark SQL or DuckDB SQL.")
@click.option("--rules", "rule_paths", multiple=True, metavar="PATH",
              help="Sigma rule, filter or correlation file, or directory (searched recursively), to add. Repeatable.")
@_rule_list_options
@click.option("--exclusions", multiple=True, metavar="NAMES",
              help="Bundled exclusions (Sigma filters) to add, comma-separated, as for hunt; all-safe adds those "
              "that require a known destination.")
@click.option("--placeholders", type=click.Choice(["expand", "let", "watchlist"]), default="expand", show_default=True,
              help="KQL only: expand placeholders from --lists, or refer to a KQL let list or a Sentinel watchlist "
              "of the same name.")
@click.option("--asim-parameters", is_flag=True,
              help="KQL only: call _Im_WebSession with a time range and the filters that the rule implies.")
@click.option("--query-period", metavar="SPAN",
              help="How far back each run looks (m, h or d), for --asim-parameters, --sentinel-analytic and --arm; "
              "Sentinel rules take 5m to 14d, at least --query-frequency.  [default: per rule, --query-frequency "
              "plus a correlation's timespan]")
@click.option("--query-frequency", default="1h", show_default=True, metavar="SPAN",
              help="How often the analytic rule runs (m, h or d, from 5m to 14d), for --sentinel-analytic and --arm.")
@click.option("--sentinel-analytic", is_flag=True, help="KQL only: write Sentinel scheduled analytic rules as YAML.")
@click.option("--arm", is_flag=True, help="KQL only: write an ARM template that deploys the analytic rules.")
@click.option("--index", metavar="PATTERN", help="ES|QL only: the index pattern to query (default logs-*).")
@click.option("--table", metavar="NAME", help="Spark SQL and DuckDB SQL only: the WebSession table (default websession).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the output to this file instead of stdout.")
@click.option("--verbose", "-v", count=True, help="Log more detail to stderr; repeat for debug output.")
def convert_command(target: str, rule_paths: tuple[str, ...], no_default_rules: bool, lists_path: str | None,
                    exclusions: tuple[str, ...], placeholders: str, asim_parameters: bool, query_period: str | None, query_frequency: str,
                    sentinel_analytic: bool, arm: bool, index: str | None, table: str | None, output: str | None,
                    verbose: int) -> None:
    """Convert Sigma rules and the Sigma filters that name them to SIEM and SQL queries.

    The queries mean what `proxyhunt hunt` runs: the same field mapping,
    exclusions and placeholder lists. A rule that the target cannot express
    is reported on stderr, never converted to a weaker query.
    """
    from proxyhunt.export.command import check_output_path, run_convert, write_output

    _configure_logging(verbose, quiet=False)
    if no_default_rules and not rule_paths:
        raise click.UsageError("--no-default-rules leaves no rules to convert; add rules with --rules PATH")
    check_output_path(output, list(rule_paths), lists_path)
    text, problems, failed = run_convert(
        target=target, rule_paths=list(rule_paths), include_bundled=not no_default_rules, lists_path=lists_path,
        placeholders=placeholders, asim_parameters=asim_parameters, query_period=query_period,
        query_frequency=query_frequency, sentinel_analytic=sentinel_analytic, arm=arm, index=index, table=table,
        exclusions=list(exclusions),
    )
    for line in problems:
        click.echo(line, err=True)
    if output:
        write_output(text, output)
    else:
        click.echo(text, nl=False)
    sys.exit(EXIT_ERROR if failed else 0)


INSPECT_EPILOG = """\b
Exit status:
  0  every file was read and every line is accounted for
  2  bad usage, or some file could not be read or recognized

\b
Examples:
  proxyhunt inspect /var/log/squid/
  proxyhunt inspect u_ex240701.log.gz access.log.1 --json
  proxyhunt inspect access.log --squid-logformat combined --rejects rejects.jsonl
  proxyhunt inspect export.csv --map export-mapping.yaml
"""


@cli.command("inspect", epilog=INSPECT_EPILOG)
@click.argument("paths", nargs=-1, required=True)
@_format_options
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as one JSON document instead of tables.")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.jsonl",
    help="Write every rejected line, with its file, line number and reason, to this file as JSON Lines.",
)
@click.option("--no-color", is_flag=True, help="Print without colours (also set by the NO_COLOR variable).")
@click.option("--verbose", "-v", count=True, help="Log more detail to stderr; repeat for debug output.")
def inspect_command(
    paths: tuple[str, ...],
    format_name: str | None,
    squid_logformat: str | None,
    map_path: str | None,
    as_json: bool,
    rejects_path: str | None,
    no_color: bool,
    verbose: int,
) -> None:
    """Show how proxyhunt reads log files, without running rules.

    For each file: the detected format with its confidence and the next best
    format, the compression, lines read, parsed, rejected and header lines,
    the time range, and the WebSession columns the file fills. PATHS are
    read as for hunt.
    """
    from proxyhunt.formats.inspect import inspect_paths
    from proxyhunt.report.inspect import render_inspection, write_inspection_json
    from proxyhunt.report.jsonl import write_rejects

    _configure_logging(verbose, quiet=False)
    # The inspection lists the notes of the format descriptions itself.
    _check_format_descriptions(squid_logformat, map_path, log_notes=False)
    files, _ = expand_paths(paths)
    _check_output_paths(files, {"--rejects": rejects_path})

    connection = duckdb.connect()
    result = inspect_paths(
        list(paths), format_name=format_name, squid_logformat=squid_logformat, map_path=map_path, connection=connection
    )
    if rejects_path:
        try:
            write_rejects(connection, rejects_path)
        except OSError as error:
            raise click.ClickException(
                f"cannot write {rejects_path}: {error.strerror}; choose a writable path for --rejects"
            ) from None

    if as_json:
        write_inspection_json(result, sys.stdout)
    else:
        colourless = no_color or bool(os.environ.get("NO_COLOR"))
        render_inspection(Console(no_color=colourless, highlight=False), result)
    sys.exit(EXIT_ERROR if result.failed_files else EXIT_NO_FINDINGS)


NORMALIZE_EPILOG = """\b
Output layout:
  DIR/EventDate=YYYY-MM-DD/part-<input>-<n>.parquet   events of that UTC date
  DIR/EventDate=__HIVE_DEFAULT_PARTITION__/...        events without a time
  DIR/_inputs/<input>.json                            the input file behind <input>

\b
<input> is derived from each input's absolute path: normalizing the same
file again replaces its earlier files, so a re-run never duplicates rows.
<n> counts the chunks of a large input, each written when DuckDB's memory
and spill files reach a third of --memory-limit.

\b
Exit status:
  0  every input was converted
  2  error: bad usage, or some input could not be read (the others are converted)
  130  interrupted with Ctrl-C

\b
Examples:
  proxyhunt normalize samples/ --to lake/websession
  proxyhunt normalize /var/log/squid/access.log.1 --to /data/lake/websession --memory-limit 512MB
  proxyhunt normalize 'exports/*.csv' --to lake/websession --rejects rejects.jsonl
  proxyhunt hunt lake/websession --since 2026-11-01 --until 2026-11-07
"""


@cli.command("normalize", epilog=NORMALIZE_EPILOG)
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Directory of the Parquet dataset, partitioned by event date; created if missing, added to if present.",
)
@_format_options
@click.option(
    "--memory-limit",
    default="512MB",
    show_default=True,
    metavar="SIZE",
    help="Memory that DuckDB may use while converting (such as 512MB or 4GB); beyond it, it spills to disk in DIR.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.jsonl",
    help="Write every rejected line, with its file, line number and reason, to this file as JSON Lines.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
@click.option("--verbose", "-v", count=True, help="Log more detail to stderr; repeat for debug output.")
def normalize_command(
    paths: tuple[str, ...],
    to: str,
    format_name: str | None,
    squid_logformat: str | None,
    map_path: str | None,
    memory_limit: str,
    rejects_path: str | None,
    quiet: bool,
    verbose: int,
) -> None:
    """Convert proxy logs to a WebSession Parquet dataset partitioned by event date, as a data lake stores it.

    PATHS are log files, directories (read recursively) or glob patterns, in
    any format that hunt reads. Memory stays bounded by --memory-limit
    whatever the size of the input. Hunt the dataset with proxyhunt hunt DIR,
    on DuckDB or with --engine spark.
    """
    from proxyhunt.normalize import NormalizeError, normalize
    from proxyhunt.report.messages import file_messages
    from proxyhunt.report.text import count_noun, safe_text

    _configure_logging(verbose, quiet)
    _check_format_descriptions(squid_logformat, map_path)
    files, _ = expand_paths(paths)
    _check_output_paths(files, {"--rejects": rejects_path})
    try:
        result = normalize(
            list(paths),
            to,
            format_name=format_name,
            squid_logformat=squid_logformat,
            map_path=map_path,
            memory_limit=memory_limit,
            rejects_path=rejects_path,
        )
    except NormalizeError as error:
        raise click.ClickException(str(error)) from None

    for report in result.files:
        if not report.error and not quiet:
            click.echo(
                f"{report.path}: {report.format or 'empty'}, {count_noun(report.parsed, 'event')} written, "
                f"{count_noun(report.rejected, 'line')} rejected, {report.skipped} skipped"
            )
        # The line above counts the rejected lines, and notes are left out with --quiet, as for hunt.
        for message in file_messages(report, rejects_written=rejects_path is not None, rejected=False):
            if message.kind != "note" or not quiet:
                click.echo(f"{message.kind}: {safe_text(message.text)}", err=True)
    if not quiet:
        replaced = sum(output.replaced for output in result.outputs)
        click.echo(
            f"{count_noun(result.rows, 'event')} from {count_noun(len(result.outputs), 'input')} written to {result.directory}"
            + (f", replacing {replaced} files of earlier runs" if replaced else "")
        )
    sys.exit(EXIT_ERROR if result.failed_files else 0)


@cli.command("formats")
def list_formats() -> None:
    """List the log formats that proxyhunt reads, with the names --format accepts."""
    for fmt in all_formats():
        click.echo(f"{fmt.name:12} {fmt.title}")
    click.echo(f"{'squid-logformat':12} Squid access log in the logformat given with --squid-logformat")
    click.echo(f"{'mapped':12} CSV, TSV or JSON Lines described by the YAML file given with --map")
