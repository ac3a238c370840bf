"""The comparison points that run in Python: a plain ``re`` loop, the Zircolite approach and DuckDB's floors.

Each baseline is run in its own process by ``python -m bench.baselines NAME
FORMAT PATH``. The first two print the number of events that the bundled
rclone rule matches, so the benchmark can check that every approach finds the
same events. The DuckDB floors print the rows they read: ``duckdb-copy``
reads each line of a log with DuckDB's CSV reader and writes it to Parquet
as normalize does, ``duckdb-fields`` also splits each line into its fields
as text, and ``duckdb-scan`` reads every column of a normalized dataset
once. None of them converts a value or derives a column, so they bound
from below what normalize and a hunt over Parquet can take on the machine.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from importlib import resources

# Sigma proxy field names, as a Zircolite-style loader would name the columns.
FIELDS = ("c-ip", "cs-username", "cs-method", "c-uri", "cs-host", "sc-status", "sc-bytes", "c-useragent")

_COMBINED = re.compile(r'^(\S+) \S+ (\S+) \[[^\]]*\] "(\S+) (\S+)[^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"')
_SQUID_AGENT = re.compile(r"\\r\\nUser-Agent: (.*?)\\r\\n")
_HOST = re.compile(r"^[a-z]+://([^/:]+)")


def user_agents(fmt: str, path: str) -> Iterator[str]:
    """Yield the user agent of each line, the way a quick script would cut it out."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if fmt == "combined":
                match = _COMBINED.match(line)
                if match:
                    yield match.group(7)
            elif fmt == "squid":
                match = _SQUID_AGENT.search(line)
                if match:
                    yield match.group(1)
            elif not line.startswith("#"):
                yield line.split("\t")[12]


def count_python_re(fmt: str, path: str) -> int:
    """Count lines whose user agent starts with ``rclone/v``, ignoring case, as the Sigma rule does."""
    pattern = re.compile(r"rclone/v", re.IGNORECASE)
    return sum(1 for agent in user_agents(fmt, path) if pattern.match(agent))


def rows(fmt: str, path: str) -> Iterator[tuple]:
    """Yield one tuple of ``FIELDS`` per line."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if fmt == "combined":
                match = _COMBINED.match(line)
                if match:
                    client, user, method, url, status, size, agent = match.groups()
                    host = _HOST.match(url)
                    yield (client, user, method, url, host.group(1) if host else None, status, size, agent)
            elif fmt == "squid":
                parts = line.split(None, 10)
                agent = _SQUID_AGENT.search(line)
                status = parts[3].partition("/")[2]
                host = _HOST.match(parts[6])
                yield (
                    parts[2], parts[7], parts[5], parts[6], host.group(1) if host else None, status, parts[4],
                    agent.group(1) if agent else None,
                )
            elif not line.startswith("#"):
                parts = line.rstrip("\n").split("\t")
                yield (parts[2], None, parts[7], parts[9], parts[8], parts[16], parts[15], parts[12])


def count_zircolite(fmt: str, path: str) -> int:
    """Load every line into SQLite and run the rule converted by pySigma's SQLite backend, as Zircolite does."""
    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection

    rule_text = resources.files("proxyhunt.rules").joinpath("bundled/proxy_ua_rclone.yml").read_text(encoding="utf-8")
    query = sqliteBackend().convert(SigmaCollection.from_yaml(rule_text))[0]

    connection = sqlite3.connect(":memory:")
    columns = ", ".join(f'"{name}" TEXT' for name in FIELDS)
    connection.execute(f"CREATE TABLE logs ({columns})")
    placeholders = ", ".join("?" for _ in FIELDS)
    connection.executemany(f"INSERT INTO logs VALUES ({placeholders})", rows(fmt, path))

    # The backend writes its query against a table named "<TABLE_NAME>".
    query = query.replace("<TABLE_NAME>", "logs").replace("SELECT *", "SELECT count(*)", 1)
    return connection.execute(query).fetchone()[0]


def duckdb_copy(fmt: str, path: str) -> int:
    """Write each line of the log, unparsed, to a Parquet file beside it, compressed as normalize compresses."""
    # No byte of a generated log is \x01, so each line is one field, and no quoting applies.
    lines = f"read_csv('{path}', columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '', escape = '', header = false, auto_detect = false)"
    return _copy_to_parquet(f"SELECT line FROM {lines}", f"{path}.lines.parquet")


def duckdb_fields(fmt: str, path: str) -> int:
    """Write the fields of each line, as text, to a Parquet file beside the log; Zeek's header lines are left out."""
    if fmt == "combined":
        # host ident user [time zone] "request" status bytes "referer" "user-agent": the time has a space in it.
        dialect = "delim = ' ', quote = '\"', escape = '\\'"
        columns = 10
    elif fmt == "zeek":
        header_lines, columns = _zeek_head(path)
        # The #close line at the end has two fields, so the reader drops it as an error.
        dialect = f"delim = '\t', quote = '', escape = '', skip = {header_lines}, ignore_errors = true"
    else:
        raise ValueError(f"DuckDB's CSV reader cannot split {fmt} lines into fields")
    names = ", ".join(f"'field{number}': 'VARCHAR'" for number in range(columns))
    fields = f"read_csv('{path}', columns = {{{names}}}, {dialect}, header = false, auto_detect = false)"
    return _copy_to_parquet(f"SELECT * FROM {fields}", f"{path}.fields.parquet")


def _copy_to_parquet(query: str, output: str) -> int:
    """Write the rows of ``query`` to ``output`` as normalize writes Parquet, remove the file, and return the row count."""
    import duckdb

    from proxyhunt.normalize import PARQUET_COMPRESSION

    try:
        connection = duckdb.connect()
        return connection.execute(
            f"COPY ({query}) TO '{output}' (FORMAT parquet, COMPRESSION {PARQUET_COMPRESSION})"
        ).fetchone()[0]
    finally:
        if os.path.exists(output):
            os.remove(output)


def _zeek_head(path: str) -> tuple[int, int]:
    """Return how many ``#`` lines start a Zeek log, and how many fields its ``#fields`` line names."""
    head = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.startswith("#"):
                break
            head.append(line.rstrip("\n"))
    names = [line.split("\t")[1:] for line in head if line.startswith("#fields\t")]
    if not names:
        raise ValueError(f"{path} has no #fields line")
    return len(head), len(names[0])


def duckdb_scan(fmt: str, path: str) -> int:
    """Read every column of a WebSession dataset once, with the least work DuckDB does on each value."""
    import duckdb

    connection = duckdb.connect()
    files = f"read_parquet('{path}/**/*.parquet', hive_partitioning = false)"
    names = [row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()]
    # A hash reads every value. count(column) did not, because DuckDB computes it from the Parquet
    # statistics of a column without NULLs and then never reads the column.
    hashes = ", ".join(f'bit_xor(hash("{name}"))' for name in names)
    connection.execute(f"SELECT {hashes} FROM {files}").fetchall()
    return connection.execute(f"SELECT count(*) FROM {files}").fetchone()[0]


BASELINES = {
    "python-re": count_python_re,
    "zircolite": count_zircolite,
    "duckdb-copy": duckdb_copy,
    "duckdb-fields": duckdb_fields,
    "duckdb-scan": duckdb_scan,
}


def main(argv: list[str]) -> int:
    name, fmt, path = argv
    print(BASELINES[name](fmt, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
