"""Benchmark proxyhunt against grep, a plain Python loop and the Zircolite approach.

    python -m bench --size 1G                      # all formats, print the table
    python -m bench --size 1G --write BENCHMARKS.md
    python -m bench --size 10M --formats combined --check   # the CI smoke run

Every step reads the same generated file from a warm page cache, in a child
process of its own, and is reported as a ratio to ``grep -ci 'rclone/v'``
measured in the same run. ``--check`` exits with status 1 when the steps that
run the seed rclone rule (proxy_ua_rclone.yml) do not find the same number of events.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.generate import FORMATS, generate
from bench.measure import warm_page_cache
from bench.report import render_markdown, render_table
from bench.steps import STEP_NAMES, Result, run_steps

UNITS = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}


def parse_size(text: str) -> int:
    """Parse ``10M``, ``1G`` or a plain number of bytes (decimal units, as disk sizes are given)."""
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("100M"), help="size of each log, e.g. 10M or 1G")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, from {', '.join(FORMATS)}")
    parser.add_argument("--steps", default=",".join(STEP_NAMES), help=f"comma-separated, from {', '.join(STEP_NAMES)}")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated traffic")
    parser.add_argument("--workdir", type=Path, help="where logs and outputs go (default: a new temporary directory)")
    parser.add_argument("--rules", type=Path, help="directory of Sigma proxy rules for the sigmahq step")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the results as Markdown to FILE")
    parser.add_argument("--check", action="store_true", help="exit with status 1 unless the rclone counts agree")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    formats = [name for name in args.formats.split(",") if name]
    steps = [name for name in args.steps.split(",") if name]
    unknown = sorted(set(formats) - set(FORMATS)) + sorted(set(steps) - set(STEP_NAMES))
    if unknown:
        print(f"unknown format or step: {', '.join(unknown)}", file=sys.stderr)
        return 2

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="proxyhunt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    for fmt in formats:
        log = workdir / f"{fmt}-{args.size}-seed{args.seed}.log"
        if not log.exists():
            print(f"generating {log} ...", file=sys.stderr)
            generate(fmt, args.size, log, seed=args.seed)
        warm_page_cache(str(log))
        results.extend(run_steps(fmt, log, steps, workdir, args.rules))
        print(render_table([result for result in results if result.fmt == fmt]))

    if args.write:
        command = "python -m bench " + " ".join(argv)
        args.write.write_text(render_markdown(results, command), encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    if args.check:
        return _check_agreement(results)
    return 0


# The floors that read one row per event; (e0) also reads Zeek's header lines.
EVENT_FLOORS = {"duckdb-fields", "duckdb-scan"}


def _check_agreement(results: list[Result]) -> int:
    """Return 0 when the rclone-rule steps of each format found the same events, else print why and return 1.

    Every step must count the same events, and grep and proxyhunt, which
    report line numbers, must name the same lines. The DuckDB floors that
    split fields or read the dataset must read one row per event, or they
    bound nothing.
    """
    status = 0
    for result in results:
        if result.step in EVENT_FLOORS and result.rows_read is not None and result.rows_read != result.events:
            print(f"{result.fmt}: {result.label} read {result.rows_read} rows of {result.events} events", file=sys.stderr)
            status = 1
    for fmt in sorted({result.fmt for result in results}):
        steps = [result for result in results if result.fmt == fmt and result.rclone_rule]
        counts = {result.step: result.matches for result in steps}
        if len(set(counts.values())) > 1:
            print(f"{fmt}: the steps disagree on rclone events: {counts}", file=sys.stderr)
            status = 1
        lines = {result.step: result.matched_lines for result in steps if result.matched_lines is not None}
        if len(set(lines.values())) > 1:
            first, *others = lines.items()
            for step, found in others:
                differ = sorted(found ^ first[1])[:10]
                print(f"{fmt}: {step} and {first[0]} found different lines, for example {differ}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
