"""The benchmark steps: what each one runs and how its result is read."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench.measure import Measurement, run

PROXYHUNT = [sys.executable, "-m", "proxyhunt"]
# proxyhunt exits with 1 when it has findings, and grep -c with 1 when it counts none.
FOUND_OR_NOT = (0, 1)
PROXYHUNT_FORMATS = {"squid": "squid", "combined": "combined", "zeek": "zeek-tsv"}
# The seed rclone rule, which steps (b), (c) and (d) run. The bundled rule set
# grows, so step (d) runs this rule alone and step (d2) runs them all.
SEED_RULE = Path(__file__).resolve().parents[1] / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml"

# The label of each step in the tables, in the order the steps run.
STEP_LABELS = {
    "grep": "(a) LC_ALL=C grep -ci 'rclone/v'",
    "python-re": "(b) Python loop with re",
    "zircolite": "(c) SQLite + pySigma SQLite backend",
    "hunt": "(d) proxyhunt hunt, seed rclone rule alone",
    "hunt-all": "(d2) proxyhunt hunt, all bundled rules",
    "duckdb-copy": "(e0) DuckDB alone: each line to Parquet, unparsed",
    "duckdb-fields": "(e1) DuckDB alone: each line's fields to Parquet, as text",
    "normalize": "(e) proxyhunt normalize, all columns",
    "duckdb-scan": "(f0) DuckDB alone: read every column of the dataset",
    "sigmahq": "(f) SigmaHQ proxy rules over Parquet",
}
STEP_NAMES = tuple(STEP_LABELS)
# Steps that count the events of the seed rclone rule, so their counts must agree.
RCLONE_STEPS = {"grep", "python-re", "zircolite", "hunt"}


@dataclass(frozen=True)
class Result:
    """One step on one log: its time, memory and what it found, or why it did not run."""

    fmt: str
    step: str
    input_bytes: int
    events: int
    seconds: float | None = None
    # User and system CPU time, which other load on the machine disturbs less than wall time.
    cpu_seconds: float | None = None
    peak_rss_bytes: int | None = None
    matches: int | None = None
    # Line numbers of the matched events, where the step reports them.
    matched_lines: frozenset[int] | None = None
    rules: int | None = None
    baseline_seconds: float | None = None
    note: str = ""
    # Rows that a DuckDB floor read, to check that it read every event.
    rows_read: int | None = None

    @property
    def label(self) -> str:
        return STEP_LABELS[self.step]

    @property
    def rclone_rule(self) -> bool:
        return self.step in RCLONE_STEPS and self.seconds is not None

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.baseline_seconds:
            return None
        return self.seconds / self.baseline_seconds


def count_events(fmt: str, log: Path) -> int:
    """Count the log's events: its lines, less Zeek's ``#`` header lines."""
    events = 0
    with log.open("rb") as data:
        for line in data:
            if not (fmt == "zeek" and line.startswith(b"#")):
                events += 1
    return events


def _jsonl_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _available(command: str) -> bool:
    try:
        run([*PROXYHUNT, command, "--help"], ok_statuses=FOUND_OR_NOT)
    except RuntimeError:
        return False
    return True


def run_steps(fmt: str, log: Path, steps: list[str], workdir: Path, rules: Path | None) -> list[Result]:
    """Run ``steps`` on ``log`` and return one Result each; grep always runs first, as the baseline."""
    size = log.stat().st_size
    events = count_events(fmt, log)
    base = {"fmt": fmt, "input_bytes": size, "events": events}

    # The first grep only settles the page cache and the binary; the second is measured.
    grep = ["grep", "-ci", "rclone/v", str(log)]
    run(grep, env={"LC_ALL": "C"}, ok_statuses=FOUND_OR_NOT)
    grep_run = run(grep, env={"LC_ALL": "C"}, ok_statuses=FOUND_OR_NOT)
    baseline = grep_run.seconds
    results = []
    if "grep" in steps:
        # Not timed: the numbers of the lines grep finds, to check which events proxyhunt finds.
        numbered = run(["grep", "-ni", "rclone/v", str(log)], env={"LC_ALL": "C"}, ok_statuses=FOUND_OR_NOT)
        lines = frozenset(int(line.split(":", 1)[0]) for line in numbered.stdout.splitlines())
        results.append(
            Result(
                step="grep",
                seconds=baseline,
                cpu_seconds=grep_run.cpu_seconds,
                peak_rss_bytes=grep_run.peak_rss_bytes,
                matches=int(grep_run.stdout),
                matched_lines=lines,
                baseline_seconds=baseline,
                **base,
            )
        )

    for step in ("python-re", "zircolite"):
        if step in steps:
            measured = run([sys.executable, "-m", "bench.baselines", step, fmt, str(log)])
            results.append(_result(step, measured, int(measured.stdout), baseline, base))

    if "hunt" in steps:
        findings = workdir / f"{fmt}-findings.jsonl"
        seed = ["--no-default-rules", "--rules", str(SEED_RULE)]
        command = [*PROXYHUNT, "hunt", str(log), "--format", PROXYHUNT_FORMATS[fmt], *seed, "--quiet"]
        command += ["--output", str(findings)]
        measured = run(command, ok_statuses=FOUND_OR_NOT)
        rows = _jsonl_rows(findings)
        result = _result("hunt", measured, len(rows), baseline, base)
        results.append(replace(result, matched_lines=frozenset(row["SourceLine"] for row in rows)))

    if "hunt-all" in steps:
        # Every bundled rule, as a hunt without --rules runs them. Its matches are
        # every rule's findings, so they are not compared with the rclone count.
        findings = workdir / f"{fmt}-all-findings.jsonl"
        command = [*PROXYHUNT, "hunt", str(log), "--format", PROXYHUNT_FORMATS[fmt], "--quiet"]
        command += ["--output", str(findings)]
        try:
            measured = run(command, ok_statuses=FOUND_OR_NOT)
        except RuntimeError as error:
            results.append(Result(step="hunt-all", note=f"failed: {error}"[:200], **base))
        else:
            results.append(_result("hunt-all", measured, len(_jsonl_rows(findings)), baseline, base))

    if "duckdb-copy" in steps:
        measured = run([sys.executable, "-m", "bench.baselines", "duckdb-copy", fmt, str(log)])
        results.append(replace(_result("duckdb-copy", measured, None, baseline, base), rows_read=int(measured.stdout)))
    if "duckdb-fields" in steps:
        if fmt == "squid":
            note = "not run: Squid pads fields with runs of spaces, which DuckDB's CSV reader cannot split"
            results.append(Result(step="duckdb-fields", note=note, **base))
        else:
            measured = run([sys.executable, "-m", "bench.baselines", "duckdb-fields", fmt, str(log)])
            result = _result("duckdb-fields", measured, None, baseline, base)
            results.append(replace(result, rows_read=int(measured.stdout)))

    dataset = workdir / f"{fmt}-parquet"
    if "normalize" in steps or "sigmahq" in steps or "duckdb-scan" in steps:
        if not _available("normalize"):
            results.append(Result(step="normalize", note="proxyhunt has no normalize command", **base))
            return results
        shutil.rmtree(dataset, ignore_errors=True)
        measured = run([*PROXYHUNT, "normalize", str(log), "--format", PROXYHUNT_FORMATS[fmt], "--to", str(dataset)])
        if not any(dataset.glob("EventDate=*/*.parquet")):
            raise RuntimeError(f"proxyhunt normalize wrote no Parquet file to {dataset}")
        if "normalize" in steps:
            results.append(_result("normalize", measured, None, baseline, base))

    if "duckdb-scan" in steps:
        measured = run([sys.executable, "-m", "bench.baselines", "duckdb-scan", fmt, str(dataset)])
        results.append(replace(_result("duckdb-scan", measured, None, baseline, base), rows_read=int(measured.stdout)))
    if "sigmahq" in steps:
        results.append(_run_sigmahq(dataset, workdir, rules, baseline, base))
    return results


def _run_sigmahq(dataset: Path, workdir: Path, rules: Path | None, baseline: float, base: dict) -> Result:
    if rules is None or not rules.is_dir():
        return Result(step="sigmahq", note="no --rules directory of SigmaHQ proxy rules given", **base)
    findings = workdir / f"{base['fmt']}-sigmahq.jsonl"
    rule_files = sorted(path for path in rules.rglob("*.yml") if "deprecated" not in path.parts)
    rule_options = [option for path in rule_files for option in ("--rules", str(path))]
    command = [*PROXYHUNT, "hunt", str(dataset), *rule_options, "--no-default-rules", "--quiet", "--output", str(findings)]
    measured = run(command, ok_statuses=FOUND_OR_NOT)
    result = _result("sigmahq", measured, len(_jsonl_rows(findings)), baseline, base)
    return replace(result, rules=len(rule_files))


def _result(step: str, measured: Measurement, matches: int | None, baseline: float, base: dict) -> Result:
    return Result(
        step=step,
        seconds=measured.seconds,
        cpu_seconds=measured.cpu_seconds,
        peak_rss_bytes=measured.peak_rss_bytes,
        matches=matches,
        baseline_seconds=baseline,
        **base,
    )
