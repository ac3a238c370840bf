"""Run the hunt's rules and correlations on Apache Spark over a WebSession dataset in a data lake.

Spark reads the dataset (Parquet as ``proxyhunt normalize`` writes it, JSON
Lines, or Delta where the installed Spark reads it) and evaluates every
detection rule in one pass over it, with the Spark SQL that
``SparkSQLBackend`` emits. Only the matching events travel to the driver,
where they fill the same DuckDB ``findings`` table as the DuckDB engine. The
later steps of the hunt (process correlation, Sigma filters, summaries) run
there unchanged, so both engines give the same findings. Correlation rules run
back on Spark, in the Spark SQL dialect of ``proxyhunt.engines.correlation``,
over the findings that the filters left as alerts.

pyspark is an optional dependency (``pip install 'proxyhunt[spark]'``) that
needs Java 17 or newer; this module imports it only when the engine starts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from sigma.exceptions import SigmaError

from proxyhunt.backends.spark import SparkSQLBackend, spark_identifier, spark_literal
from proxyhunt.engines.correlation import CompiledCorrelation, CorrelationQuery, RuleEvents
from proxyhunt.engines.dialects import SparkDialect
from proxyhunt.engines.duckdb import (
    FINDINGS_TABLE,
    RULE_TYPE_DETECTION,
    SUPPRESSION_TYPE,
    VERDICT_ALERT,
    CompiledRule,
    create_findings_table,
    rule_columns,
)
from proxyhunt.formats.dataset_paths import split_datasets
from proxyhunt.formats.loader import TABLE, FileReport
from proxyhunt.formats.parquet import PARTITION_COLUMN, TimeRange, is_parquet_dataset
from proxyhunt.formats.sql import quote_identifier
from proxyhunt.rules.loader import LoadedRule
from proxyhunt.schema import COLUMN_NAMES, COLUMNS, create_table_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the Spark engine needs pyspark and Java 17 or newer; install them with "
    "pip install 'proxyhunt[spark]' and, on Debian or Ubuntu, apt-get install openjdk-17-jre-headless"
)
WEBSESSION_VIEW = "websession"
FINDINGS_VIEW = "proxyhunt_alerts"
APP_NAME = "proxyhunt hunt"

# WebSession column types in Spark SQL.
SPARK_TYPES = {"TIMESTAMP": "TIMESTAMP", "VARCHAR": "STRING", "INTEGER": "INT", "BIGINT": "BIGINT"}
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")


class SparkEngineError(Exception):
    """A problem that stops the Spark engine, with the fix in the message: pyspark or Java missing, a bad master URL."""


def import_pyspark() -> Any:
    """Import and return the ``pyspark.sql`` module; raise SparkEngineError with the install command when it is missing."""
    try:
        import pyspark.sql
    except ImportError:
        raise SparkEngineError(INSTALL_HINT) from None
    return pyspark.sql


def start_session(master: str | None = None) -> tuple[SparkSession, bool]:
    """Return a Spark session and whether this call created it.

    An active session (in a notebook, a Databricks job, or ``spark-submit``)
    is used as it is, except that its SQL time zone is set to UTC, because
    WebSession times are UTC. ``master`` applies only to a new session;
    without it, ``spark-submit``'s ``--master`` or else ``local[*]`` is used.
    """
    sql = import_pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        if master:
            log.warning("--master %s is ignored: proxyhunt runs on the Spark session that is already active", master)
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active, False

    builder = sql.SparkSession.builder.appName(APP_NAME)
    builder = builder.config("spark.sql.session.timeZone", "UTC").config("spark.ui.showConsoleProgress", "false")
    try:
        if master:
            builder = builder.master(master)
        elif not _master_configured():
            builder = builder.master("local[*]")
        if (master or "local").startswith("local"):
            # A local session has no other clients, so its driver listens on loopback only and starts no web UI.
            builder = (
                builder.config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.ui.enabled", "false")
            )
        session = builder.getOrCreate()
    except Exception as error:  # noqa: BLE001 - py4j and Java report start-up failures as many types
        raise SparkEngineError(
            f"Spark did not start ({_first_line(error)}); check that Java 17 or newer is installed "
            f"(java -version) and that the master URL {master or 'local[*]'} is reachable"
        ) from None
    if not log.isEnabledFor(logging.DEBUG):
        # Spark logs every failed task with its Java stack; the engine reports the error itself.
        session.sparkContext.setLogLevel("OFF")
    return session, True


def _master_configured() -> bool:
    """True when spark-submit or spark-defaults.conf already set ``spark.master``; this starts the JVM gateway."""
    from pyspark import SparkConf

    return SparkConf().contains("spark.master")


def start_spark_engine(master: str | None, time_range: TimeRange) -> SparkEngine:
    """Start (or join) a Spark session and return an engine that hunts events in ``time_range`` on it."""
    session, _ = start_session(master)
    return SparkEngine(session, time_range)


@dataclass
class _Dataset:
    """One input dataset: its report and, when it could be read, its rows as WebSession columns."""

    report: FileReport
    frame: DataFrame | None = None


@dataclass
class SparkEngine:
    """Runs compiled rules and correlations on one Spark session over the datasets it loaded."""

    session: SparkSession
    time_range: TimeRange = field(default_factory=TimeRange)
    datasets: list[_Dataset] = field(default_factory=list)
    _last_error: BaseException | None = field(default=None, repr=False)

    def load(self, paths: list[str]) -> list[FileReport]:
        """Read each dataset lazily and register their union as the ``websession`` view; return one report each.

        Counts, columns and time span in the reports are filled in when the
        rules run.
        """
        frames = []
        for path in _expanded(paths):
            dataset = self._read(path)
            self.datasets.append(dataset)
            if dataset.frame is not None:
                frames.append(dataset.frame)
        union = frames[0] if frames else self._empty_frame()
        for frame in frames[1:]:
            union = union.unionByName(frame)
        union.createOrReplaceTempView(WEBSESSION_VIEW)
        return [dataset.report for dataset in self.datasets]

    def compile_rules(self, rules: list[LoadedRule]) -> list[CompiledRule]:
        """Convert each rule to a Spark SQL condition and check that Spark can run it.

        Java compiles a regular expression only when a row reaches it, so the
        conditions are run over one row of empty values: together first, and
        one by one only when that fails, to name the rule at fault.
        """
        compiled = [self._compile_rule(loaded) for loaded in rules]
        runnable = [rule for rule in compiled if rule.runnable]
        if not runnable or self._runs_on_sample([rule.where for rule in runnable]):
            return compiled
        return [self._checked(rule) if rule.runnable else rule for rule in compiled]

    def _runs_on_sample(self, conditions: list[str]) -> bool:
        try:
            self._sample_frame().selectExpr(*(f"({where}) AS r{index}" for index, where in enumerate(conditions))).collect()
        except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
            self._last_error = error
            return False
        return True

    def _checked(self, rule: CompiledRule) -> CompiledRule:
        if self._runs_on_sample([rule.where]):
            return rule
        message = f"cannot be run in Spark: {_first_line(self._last_error)}"
        if "rlike" in rule.where:
            message += "; note that |re values must also be valid Java regular expressions on Spark"
        return CompiledRule(rule.loaded, None, rule.columns, message)

    def _sample_frame(self) -> DataFrame:
        """Return one WebSession row of empty text, zeros and the epoch, on which every condition is evaluated."""
        values = {"STRING": "''", "INT": "0", "BIGINT": "0", "TIMESTAMP": "TIMESTAMP '1970-01-01 00:00:00'"}
        columns = ", ".join(
            f"CAST({values[SPARK_TYPES[column.sql_type]]} AS {SPARK_TYPES[column.sql_type]}) AS {spark_identifier(column.name)}"
            for column in COLUMNS
        )
        return self.session.sql(f"SELECT {columns}")

    def run_rules(self, connection: duckdb.DuckDBPyConnection, compiled: list[CompiledRule]) -> dict[str, int]:
        """Evaluate every runnable rule in one pass, insert the hits into DuckDB's ``findings``; return hits per rule key.

        When that pass fails (a regular expression that Java cannot compile is
        found only when it runs), the rules run one by one so that the failing
        rule is named and the others still give their hits.
        """
        create_findings_table(connection)
        # The events stay in Spark; the empty table lets later steps query it as they do in the DuckDB engine.
        connection.execute(create_table_sql(TABLE))
        runnable = [rule for rule in compiled if rule.runnable]
        hits: dict[str, int] = {}
        if runnable:
            try:
                table = self._collect_hits(runnable)
            except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
                log.info("one pass over all rules failed (%s); running them one by one", _first_line(error))
                table = self._collect_hits_one_by_one(runnable)
            hits = _insert_hits(connection, runnable, table)
        self._describe_datasets()
        return hits

    def run_correlations(self, connection: duckdb.DuckDBPyConnection, compiled: list[CompiledCorrelation]) -> dict[str, int]:
        """Run each runnable correlation on Spark over the detection findings that are still alerts.

        Those findings are sent from DuckDB to Spark as a view, so that Sigma
        filters, which ran on the driver, decide which events count, as they
        do in the DuckDB engine.
        """
        create_findings_table(connection)
        runnable = [correlation for correlation in compiled if correlation.runnable]
        if not runnable:
            return {}
        self._register_alerts(connection)
        dialect = SparkDialect()
        counts: dict[str, int] = {}
        for correlation in runnable:
            loaded = correlation.loaded
            sources = [
                RuleEvents(FINDINGS_VIEW, _rule_identity_condition(item.rule)) for item in correlation.inputs
            ]
            query = CorrelationQuery(correlation, dialect, sources).findings_select()
            try:
                frame = self.session.sql(query)
                # Window times reach Arrow as UTC without a zone, as DuckDB stores them.
                frame = frame.withColumns({name: frame[name].cast("timestamp_ntz") for name in ("WindowStart", "WindowEnd")})
                table = frame.toArrow()
            except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
                log.error("correlation '%s' (%s) failed in Spark and was skipped: %s", loaded.title, loaded.path, _first_line(error))
                continue
            counts[loaded.key] = _insert_correlation_findings(connection, table)
            log.debug("correlation %s (%s): %d findings", loaded.title, loaded.path, counts[loaded.key])
        return counts

    def connect_counts(self) -> list[tuple[str, int, int]]:
        """Return (SourceFile, requests, CONNECT requests) per source file, for the notes on TLS tunnels."""
        try:
            rows = self.session.sql(
                f"SELECT SourceFile, count(*), count_if(upper(HttpRequestMethod) = 'CONNECT') "
                f"FROM {WEBSESSION_VIEW} GROUP BY SourceFile ORDER BY SourceFile"
            ).collect()
        except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
            log.warning("counting CONNECT requests failed, so no TLS-tunnel notes are given: %s", _first_line(error))
            return []
        return [(row[0], row[1], row[2]) for row in rows]

    # Reading datasets

    def _read(self, path: str) -> _Dataset:
        report = FileReport(path, confidence=1.0)
        try:
            kind, frame = self._read_frame(path)
        except SparkEngineError as error:
            report.error = str(error)
            log.warning("%s: %s", path, report.error)
            return _Dataset(report)
        except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
            report.error = f"Spark cannot read the dataset ({_first_line(error)}); check that its files are complete"
            log.warning("%s: %s", path, report.error)
            return _Dataset(report)

        report.format, report.format_title = kind
        present = set(frame.columns)
        if not present & set(COLUMN_NAMES):
            report.error = "no column of the dataset is a WebSession column; write the dataset with proxyhunt normalize"
            return _Dataset(report)
        if self.time_range.bounded:
            if "TimeGenerated" not in present:
                report.error = "the dataset has no TimeGenerated column, so --since and --until cannot select its events"
                return _Dataset(report)
            if PARTITION_COLUMN in present:
                # A condition on the partition column alone lets Spark skip whole directories.
                frame = frame.where(self.time_range.partition_condition(spark_identifier(PARTITION_COLUMN)))
        frame = frame.selectExpr(*_websession_projection(dict(frame.dtypes), path))
        if self.time_range.bounded:
            frame = frame.where(self.time_range.sql_condition(spark_identifier("TimeGenerated")))
        return _Dataset(report, frame)

    def _read_frame(self, path: str) -> tuple[tuple[str, str], DataFrame]:
        reader = self.session.read
        if self._is_delta_table(path):
            try:
                return ("delta", "Delta table"), reader.format("delta").load(path)
            except Exception as error:  # noqa: BLE001 - a missing Delta source is a ClassNotFound inside py4j
                if "delta" in str(error).lower() and "not found" in str(error).lower():
                    raise SparkEngineError(
                        "this Spark cannot read Delta tables; add Delta Lake (pip install delta-spark, "
                        "or spark-submit --packages io.delta:delta-spark_2.13:<version>) or export the table to Parquet"
                    ) from None
                raise
        # A remote path is Parquet unless its name ends like JSON Lines, because listing it needs Hadoop.
        remote_json = _is_remote(path) and path.lower().endswith(JSON_SUFFIXES)
        if is_parquet_dataset(path) or (_is_remote(path) and not remote_json):
            # Spark takes the schema from one file's footer, not all: the files
            # that normalize writes share one schema, and a lake has too many to read.
            return ("parquet", "WebSession Parquet dataset"), reader.parquet(path)
        if remote_json or _is_json_lines(path):
            return ("jsonl", "WebSession JSON Lines"), reader.schema(_json_schema()).json(path)
        if not os.path.exists(path):
            raise SparkEngineError("dataset not found; check the path")
        raise SparkEngineError(
            "not a WebSession dataset (Parquet, JSON Lines or Delta); convert raw logs first with "
            "proxyhunt normalize LOGS --to DIR, then hunt DIR"
        )

    def _is_delta_table(self, path: str) -> bool:
        """True when ``path`` holds a ``_delta_log`` directory, looked up through Hadoop for a remote URI."""
        if not _is_remote(path):
            return _is_delta_directory(path)
        try:
            jvm = self.session._jvm
            log_path = jvm.org.apache.hadoop.fs.Path(path.rstrip("/") + "/_delta_log")
            return bool(log_path.getFileSystem(self.session._jsc.hadoopConfiguration()).exists(log_path))
        except Exception as error:  # noqa: BLE001 - py4j, or Spark Connect without a JVM
            # NOTE: without a JVM gateway (Spark Connect) a remote Delta table is read as Parquet,
            # which also reads files that the table has removed; pass a Parquet copy instead.
            log.warning("%s: cannot check for a Delta log (%s); reading it as Parquet", path, _first_line(error))
            return False

    def _empty_frame(self) -> DataFrame:
        return self.session.createDataFrame([], _spark_schema())

    def _describe_datasets(self) -> None:
        """Fill each dataset's report with its event count, the columns it fills and its time span.

        NOTE: this is a second pass over each dataset. Spark's observed
        metrics (DataFrame.observe) could fold it into the rules' pass, but
        in pyspark 4.3.0, Observation.get still waited after minutes when the
        action was toArrow().
        """
        for dataset in self.datasets:
            if dataset.frame is None:
                continue
            report = dataset.report
            try:
                metrics = dataset.frame.agg(*_dataset_metrics()).collect()[0].asDict()
            except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
                report.error = f"Spark failed while reading the dataset ({_first_line(error)}); check that its files are complete"
                log.warning("%s: %s", report.path, report.error)
                continue
            report.parsed = report.lines_read = metrics["rows"]
            report.columns = [name for name in COLUMN_NAMES if metrics.get(f"count_{name}")]
            report.first_seen, report.last_seen = metrics["first_seen"], metrics["last_seen"]

    # Rules

    def _compile_rule(self, loaded: LoadedRule) -> CompiledRule:
        columns = rule_columns(loaded)
        try:
            queries = SparkSQLBackend().convert_rule(loaded.rule)
        except (SigmaError, NotImplementedError, ValueError, TypeError) as error:
            message = str(error).split(" (while converting rule")[0]
            return CompiledRule(loaded, None, columns, f"cannot be converted to Spark SQL: {message}")
        if not queries:
            return CompiledRule(
                loaded, None, columns, "cannot be converted: the condition selects no detection; check its names and patterns"
            )
        where = " OR ".join(f"({query})" for query in queries)
        try:
            # Analysis, not execution: Spark resolves columns and functions here.
            self._empty_frame().where(where).schema
        except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
            return CompiledRule(loaded, None, columns, f"cannot be run in Spark: {_first_line(error)}")
        return CompiledRule(loaded, where, columns)

    def _collect_hits(self, rules: list[CompiledRule]) -> pa.Table:
        flags = ", ".join(f"IF({rule.where}, {index}, NULL)" for index, rule in enumerate(rules))
        any_rule = " OR ".join(f"({rule.where})" for rule in rules)
        query = (
            f"SELECT {_output_columns()}, rule_index FROM ("
            f"SELECT *, filter(array({flags}), flag -> flag IS NOT NULL) AS matched FROM {WEBSESSION_VIEW} "
            f"WHERE {any_rule}) LATERAL VIEW explode(matched) exploded AS rule_index"
        )
        return self.session.sql(query).toArrow()

    def _collect_hits_one_by_one(self, rules: list[CompiledRule]) -> pa.Table:
        tables = []
        for index, rule in enumerate(rules):
            query = f"SELECT {_output_columns()}, {index} AS rule_index FROM {WEBSESSION_VIEW} WHERE {rule.where}"
            try:
                tables.append(self.session.sql(query).toArrow())
            except Exception as error:  # noqa: BLE001 - py4j wraps every Spark error
                loaded = rule.loaded
                log.error("rule '%s' (%s) failed in Spark and was skipped: %s", loaded.title, loaded.path, _first_line(error))
        if not tables:
            return self.session.sql(f"SELECT {_output_columns()}, 0 AS rule_index FROM {WEBSESSION_VIEW} WHERE false").toArrow()
        return pa.concat_tables(tables, promote_options="permissive")

    # Correlations

    def _register_alerts(self, connection: duckdb.DuckDBPyConnection) -> None:
        table = connection.sql(
            f"SELECT RuleId, RuleTitle, RuleSource, RuleType, Verdict, * EXCLUDE (RuleId, RuleTitle, RuleSource, RuleType, "
            f"Verdict, RuleTags, Suppressions, Events, GroupBy, Destinations) FROM {FINDINGS_TABLE} "
            f"WHERE RuleType = '{RULE_TYPE_DETECTION}' AND Verdict = '{VERDICT_ALERT}'"
        ).to_arrow_table()
        frame = self.session.createDataFrame(table) if table.num_rows else self._empty_findings_frame(table)
        times = [name for name, dtype in frame.dtypes if dtype == "timestamp_ntz"]
        frame = frame.withColumns({name: frame[name].cast("timestamp") for name in times})
        frame.createOrReplaceTempView(FINDINGS_VIEW)

    def _empty_findings_frame(self, table: pa.Table) -> DataFrame:
        # createDataFrame infers no schema from an empty Arrow table, so it is spelled out.
        return self.session.createDataFrame([], _arrow_schema_to_ddl(table.schema))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line.removeprefix("An error occurred while calling ").strip()


def _expanded(paths: list[str]) -> list[str]:
    """Return the paths with each local directory of datasets and logs split into its datasets and its logs.

    Spark reads a directory as one dataset and fails on the first file in it
    that is not Parquet, so each log gets a report of its own instead.
    """
    expanded: list[str] = []
    for path in paths:
        if _is_remote(path) or not os.path.isdir(path) or _is_delta_directory(path):
            expanded.append(path)
            continue
        datasets, logs = split_datasets([path])
        expanded += datasets + logs
    return expanded


def _is_delta_directory(path: str) -> bool:
    """True when a local directory has a ``_delta_log`` directory, as a Delta table does."""
    return os.path.isdir(os.path.join(path, "_delta_log"))


def _is_remote(path: str) -> bool:
    """True for a URI that only Spark can list, such as s3a://, abfss:// or dbfs:/."""
    return "://" in path or path.startswith("dbfs:")


def _is_json_lines(path: str) -> bool:
    """True for a JSON Lines file, or a directory with one below it outside hidden and ``_`` directories."""
    if os.path.isfile(path):
        return path.lower().endswith(JSON_SUFFIXES)
    for _, directories, files in os.walk(path):
        directories[:] = [name for name in directories if not name.startswith((".", "_"))]
        if any(name.lower().endswith(JSON_SUFFIXES) and not name.startswith((".", "_")) for name in files):
            return True
    return False


def _spark_schema() -> str:
    return ", ".join(f"{spark_identifier(column.name)} {SPARK_TYPES[column.sql_type]}" for column in COLUMNS)


def _json_schema() -> str:
    # Times are read as text and parsed in the projection, which also takes epoch seconds.
    return ", ".join(
        f"{spark_identifier(column.name)} {'STRING' if column.name == 'TimeGenerated' else SPARK_TYPES[column.sql_type]}"
        for column in COLUMNS
    )


def _websession_projection(types: dict[str, str], path: str) -> list[str]:
    """Return select expressions that give exactly the WebSession columns with their types.

    ``types`` maps the dataset's columns to their Spark type names. A missing
    column or value is NULL, except SourceFile, which then names the dataset. Text
    times (JSON Lines) are read as ISO 8601, or as epoch seconds.
    """
    expressions = []
    for column in COLUMNS:
        quoted = spark_identifier(column.name)
        if column.name == "SourceFile":
            value = f"coalesce({quoted}, {spark_literal(path)})" if column.name in types else spark_literal(path)
        elif column.name not in types:
            value = "NULL"
        elif column.name == "TimeGenerated" and types[column.name] == "string":
            value = (
                f"coalesce(try_cast({quoted} AS TIMESTAMP), "
                f"timestamp_micros(CAST(try_cast({quoted} AS DOUBLE) * 1000000 AS BIGINT)))"
            )
        else:
            value = quoted
        expressions.append(f"CAST({value} AS {SPARK_TYPES[column.sql_type]}) AS {quoted}")
    return expressions


def _dataset_metrics() -> list[Any]:
    functions = import_pyspark().functions
    metrics = [functions.count(functions.lit(1)).alias("rows")]
    metrics += [functions.count(functions.col(spark_identifier(name))).alias(f"count_{name}") for name in COLUMN_NAMES]
    metrics += [
        functions.min(functions.col("TimeGenerated").cast("timestamp_ntz")).alias("first_seen"),
        functions.max(functions.col("TimeGenerated").cast("timestamp_ntz")).alias("last_seen"),
    ]
    return metrics


def _output_columns() -> str:
    """Return the WebSession columns as the hits carry them to the driver: times as UTC without a zone."""
    items = []
    for column in COLUMNS:
        quoted = spark_identifier(column.name)
        if column.sql_type == "TIMESTAMP":
            items.append(f"CAST({quoted} AS TIMESTAMP_NTZ) AS {quoted}")
        else:
            items.append(quoted)
    return ", ".join(items)


def _rule_identity_condition(rule: LoadedRule) -> str:
    """Return the Spark SQL condition that selects one rule's alert findings in the alerts view."""
    return (
        f"RuleType = '{RULE_TYPE_DETECTION}' AND RuleId = {spark_literal(rule.rule_id)} "
        f"AND RuleSource = {spark_literal(rule.path)} AND RuleTitle = {spark_literal(rule.title)}"
    )


def _insert_hits(connection: duckdb.DuckDBPyConnection, rules: list[CompiledRule], table: pa.Table) -> dict[str, int]:
    """Insert collected hits into ``findings`` rule by rule, in the order the DuckDB engine inserts them."""
    columns = ", ".join(quote_identifier(name) for name in COLUMN_NAMES)
    hits: dict[str, int] = {}
    connection.register("proxyhunt_spark_hits", table)
    try:
        for index, rule in enumerate(rules):
            loaded = rule.loaded
            inserted = connection.execute(
                f"INSERT INTO {FINDINGS_TABLE} BY NAME SELECT ? AS RuleId, ? AS RuleTitle, ? AS RuleLevel, "
                f"?::VARCHAR[] AS RuleTags, ? AS RuleSource, '{RULE_TYPE_DETECTION}' AS RuleType, "
                f"'{VERDICT_ALERT}' AS Verdict, []::{SUPPRESSION_TYPE}[] AS Suppressions, {columns} "
                f"FROM proxyhunt_spark_hits WHERE rule_index = ? ORDER BY SourceFile, SourceLine",
                [loaded.rule_id, loaded.title, loaded.level, loaded.tags, loaded.path, index],
            ).fetchall()[0][0]
            hits[loaded.key] = inserted
            log.debug("rule %s (%s): %d hits", loaded.title, loaded.path, inserted)
    finally:
        connection.unregister("proxyhunt_spark_hits")
    return hits


def _insert_correlation_findings(connection: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    connection.register("proxyhunt_spark_correlation", table)
    try:
        return connection.execute(
            f"INSERT INTO {FINDINGS_TABLE} BY NAME SELECT * REPLACE (CAST(GroupBy AS JSON) AS GroupBy), "
            f"[]::{SUPPRESSION_TYPE}[] AS Suppressions FROM proxyhunt_spark_correlation"
        ).fetchall()[0][0]
    finally:
        connection.unregister("proxyhunt_spark_correlation")


def _arrow_schema_to_ddl(schema: pa.Schema) -> str:
    names = {pa.string(): "STRING", pa.large_string(): "STRING", pa.int32(): "INT", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
    parts = []
    for arrow_field in schema:
        if pa.types.is_timestamp(arrow_field.type):
            spark_type = "TIMESTAMP_NTZ"
        else:
            spark_type = names.get(arrow_field.type, "STRING")
        parts.append(f"{spark_identifier(arrow_field.name)} {spark_type}")
    return ", ".join(parts)
