"""The ``proxyhunt convert`` command behind the CLI: option checks, conversion and output text."""

from __future__ import annotations

import click

from proxyhunt.export.convert import ConvertError, convert
from proxyhunt.export.output import render_problems, render_queries
from proxyhunt.export.sentinel import AnalyticRuleError, Schedule, analytic_rule_yaml, arm_template_json


def run_convert(
    target: str,
    rule_paths: list[str],
    include_bundled: bool,
    lists_path: str | None,
    placeholders: str,
    asim_parameters: bool,
    query_period: str,
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
        schedule = Schedule(query_frequency=query_frequency, query_period=query_period)
        conversions, ruleset = convert(
            rule_paths,
            target,
            include_bundled=include_bundled,
            lists_path=lists_path,
            placeholders=placeholders,
            asim_parameters=asim_parameters,
            query_period=query_period,
            index=index,
            table=table,
            exclusions=exclusions,
        )
    except (ConvertError, AnalyticRuleError) as error:
        raise click.UsageError(str(error)) from None

    problems = [f"error: {problem}" for problem in ruleset.problems]
    # Set-aside documents (another log source, a duplicate id) are not errors, as in hunt.
    problems += [f"note: {skipped}" for skipped in ruleset.skipped]
    problems += render_problems(conversions)
    if not conversions:
        problems.append("error: no web-proxy rule to convert; give rules with --rules PATH")
    converted = [conversion for conversion in conversions if conversion.ok]
    failed = bool(ruleset.problems) or len(converted) < len(conversions) or not conversions
    if not (sentinel_analytic or arm):
        return render_queries(conversions, target), problems, failed

    # A rule whose analytic rule cannot be written (its correlation spans more
    # than the query period) is reported like a rule that cannot be converted.
    deployable = []
    documents = []
    for conversion in converted:
        try:
            documents.append(analytic_rule_yaml(conversion, schedule))
        except AnalyticRuleError as error:
            problems.append(f"error: {conversion.rule_path} ({conversion.rule_title}): {error}")
            failed = True
            continue
        deployable.append(conversion)
    text = "---\n".join(documents) if sentinel_analytic else arm_template_json(deployable, schedule)
    return text, problems, failed
