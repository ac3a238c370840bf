"""Text output of ``proxyhunt convert``: the queries, each under a comment naming its rule."""

from __future__ import annotations

from proxyhunt.export.convert import Conversion
from proxyhunt.export.targets import TARGETS
from proxyhunt.report.text import safe_text


def comment(target: str, text: str) -> str:
    """Return rule text as a one-line comment in the target's language.

    Line breaks and other control characters are written as ``\\xHH`` escapes,
    because a line break would end a ``//``, ``--`` or ``#`` comment and let
    the rest of the text run as query text.
    """
    marker = TARGETS[target].comment
    text = safe_text(text)
    if marker == "```":
        # SPL comments are enclosed in triple backquotes, so the text must not close one.
        return f"``` {text.replace('`', '')} ```"
    return f"{marker} {text}"


def statement(target: str, query: str) -> str:
    """Return a query as a whole statement, ended with ``;`` for the SQL targets, so that a file of them runs as a script."""
    return query + TARGETS[target].statement_end


def render_queries(conversions: list[Conversion], target: str) -> str:
    """Return the converted queries; with several, each follows a comment with its rule's title and id.

    A single query is returned alone, so that it can be pasted as it is. A
    rule that could not be converted gets a comment with the reason after the
    queries, so that the file names every rule it lacks.
    """
    converted = [conversion for conversion in conversions if conversion.ok]
    rejected = [conversion for conversion in conversions if not conversion.ok]
    if len(converted) == 1 and not rejected:
        return statement(target, converted[0].query) + "\n"
    blocks = []
    for conversion in converted:
        lines = [comment(target, _heading(conversion))]
        lines.extend(comment(target, f"Excludes Sigma filter: {title}") for title in conversion.filters)
        lines.append(statement(target, conversion.query))
        blocks.append("\n".join(lines))
    blocks.extend(comment(target, f"Not converted: {_heading(conversion)}: {conversion.error}") for conversion in rejected)
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def not_converted_comments(rejected: list[tuple[Conversion, str]]) -> str:
    """Return YAML comment lines naming each rule left out of Sentinel analytic rules, with the reason."""
    return "".join(f"# Not converted: {safe_text(_heading(conversion))}: {safe_text(reason)}\n" for conversion, reason in rejected)


def _heading(conversion: Conversion) -> str:
    return conversion.rule_title + (f" ({conversion.rule_id})" if conversion.rule_id else "")


def render_problems(conversions: list[Conversion]) -> list[str]:
    """Return one line per rule that could not be converted, and one per note about blind sources."""
    lines = []
    for conversion in conversions:
        if not conversion.ok:
            lines.append(f"error: {conversion.rule_path} ({conversion.rule_title}): {conversion.error}")
        for note in conversion.notes:
            lines.append(f"note: {conversion.rule_title}: {note}")
    return lines
