"""The ``proxyhunt convert`` command behind the CLI: option checks, conversion and output text."""

from __future__ import annotations

import os
from pathlib import Path

import click

from proxyhunt.export.convert import ConvertError, convert
from proxyhunt.export.output import not_converted_comments, render_problems, render_queries
from proxyhunt.export.sentinel import AnalyticRuleError, Schedule, analytic_rule_yaml, arm_template_json, period_seconds
from proxyhunt.report.jsonl import replace_when_done
from proxyhunt.report.text import safe_text


def run_convert(
    target: str,
    rule_paths: list[str],
    include_bundled: bool,
    lists_path: str | None,
    placeholders: str,
    asim_parameters: bool,
    query_period: str | None,
    query_frequency: str,
    sentinel_analytic: bool,
    arm: bool,
    index: str | None,
    table: str | None,
    exclusions: list[str] | None = None,
) -> tuple[str, list[str], bool]:
    """Convert the rules and return the output text, the problem lines for stderr, and whether any rule failed.

    Raises click.UsageError for options that do not go together.
    """
    if (sentinel_analytic or arm) and target != "kql":
        raise click.UsageError("--sentinel-analytic and --arm write Sentinel rules; use them with --target kql")
    if sentinel_analytic and arm:
        raise click.UsageError("--sentinel-analytic and --arm are two output forms; give one of them")
    if index and target != "esql":
        raise click.UsageError("--index is for --target esql")
    if table and target not in ("sparksql", "duckdbsql"):
        raise click.UsageError("--table is for --target sparksql or duckdbsql")

    try:
        # The periods are checked always, because --asim-parameters writes them into the query.
        if query_period is not None:
            period_seconds(query_period, "--query-period")
        period_seconds(query_frequency, "--query-frequency")
        schedule = Schedule(query_frequency=query_frequency, query_period=query_period) if sentinel_analytic or arm else None
        conversions, ruleset = convert(
            rule_paths,
            target,
            include_bundled=include_bundled,
            lists_path=lists_path,
            placeholders=placeholders,
            asim_parameters=asim_parameters,
            query_period=query_period,
            query_frequency=query_frequency,
            index=index,
            table=table,
            exclusions=exclusions,
        )
    except (ConvertError, AnalyticRuleError) as error:
        # Option values and file names are echoed in the message, so they are escaped like rule text.
        raise click.UsageError(safe_text(str(error))) from None

    problems = [f"error: {problem}" for problem in ruleset.problems]
    # Set-aside documents (another log source, a duplicate id) are not errors, as in hunt.
    problems += [f"note: {skipped}" for skipped in ruleset.skipped]
    problems += render_problems(conversions)
    if not conversions:
        problems.append("error: no web-proxy rule to convert; give rules with --rules PATH")
    converted = [conversion for conversion in conversions if conversion.ok]
    failed = bool(ruleset.problems) or len(converted) < len(conversions) or not conversions
    # Rule titles and file names are rule text, which must not reach the terminal as escape sequences.
    problems = [safe_text(line) for line in problems]
    if schedule is None:
        return render_queries(conversions, target), problems, failed

    # A rule whose analytic rule cannot be written (its correlation spans more
    # than the query period) is reported like a rule that cannot be converted.
    deployable = []
    documents = []
    rejected = [(conversion, conversion.error) for conversion in conversions if not conversion.ok]
    for conversion in converted:
        try:
            documents.append(analytic_rule_yaml(conversion, schedule))
        except AnalyticRuleError as error:
            problems.append(safe_text(f"error: {conversion.rule_path} ({conversion.rule_title}): {error}"))
            rejected.append((conversion, str(error)))
            failed = True
            continue
        deployable.append(conversion)
    if not sentinel_analytic:
        # JSON has no comments, so an ARM template names the rules it lacks on stderr only.
        return arm_template_json(deployable, schedule), problems, failed
    return not_converted_comments(rejected) + "---\n".join(documents), problems, failed


def check_output_path(output: str | None, rule_paths: list[str], lists_path: str | None) -> None:
    """Reject an ``--output`` file that is also an input: a ``--rules`` file, a file under a ``--rules`` directory, or ``--lists``.

    Files are compared by device and inode, so a symbolic or hard link to an
    input is caught as well as the same path. Raises click.UsageError naming both.
    """
    if not output or output == "-":
        return
    output_identity = _file_identity(output)
    if output_identity is None:
        return

    for option, path in _input_files(rule_paths, lists_path):
        if _file_identity(path) == output_identity:
            raise click.UsageError(
                safe_text(
                    f"--output {output} is also the {option} file {path}, which would be overwritten; "
                    "choose another file name"
                )
            )


def write_output(text: str, output: str) -> None:
    """Write the converted text to ``output`` so that a failed write leaves an earlier file unchanged.

    A symbolic link is followed, and a FIFO or device is written to in place.
    Raises click.ClickException when the file cannot be written.
    """
    try:
        with replace_when_done(output) as stream:
            stream.write(text)
    except OSError as error:
        raise click.ClickException(
            safe_text(f"cannot write {output}: {error.strerror}; choose a writable path for --output")
        ) from None


def _input_files(rule_paths: list[str], lists_path: str | None):
    """Yield (option, path) for each input file: every file under each ``--rules`` path, and ``--lists``."""
    if lists_path:
        yield "--lists", lists_path
    for rule_path in rule_paths:
        if os.path.isdir(rule_path):
            for path in sorted(Path(rule_path).rglob("*")):
                if path.is_file():
                    yield "--rules", str(path)
        else:
            yield "--rules", rule_path


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino
