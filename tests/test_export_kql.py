"""KQL export: exact Sigma semantics, exclusions, ASIM parameters, Sentinel rules, and a real Kusto parser.

Every generated KQL query, the golden files included, is parsed and analyzed
with Microsoft's Kusto.Language (npm package ``@kusto/language-service-next``,
see ``tests/package.json``) through node, against a declared ASIM WebSession
table, so unknown columns and type errors fail the test as syntax errors do. The first test that needs the
parser runs ``npm ci`` in tests/ when the package is missing. The parser tests are skipped only when node or
npm is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from proxyhunt.export import convert
from proxyhunt.export.fields import ASIM_FIELDS
from proxyhunt.export.sentinel import Schedule, analytic_rule, arm_template

TESTS = Path(__file__).parent
GOLDEN_KQL = TESTS / "golden" / "kql"
# The seed rclone rule alone, for tests of single-rule output; the bundled rclone pack adds correlations.
RCLONE_RULE = TESTS.parent / "src" / "proxyhunt" / "rules" / "bundled" / "proxy_ua_rclone.yml"


def write_rule(tmp_path: Path, detection: str, name: str = "rule.yml", extra: str = "") -> Path:
    path = tmp_path / name
    path.write_text(
        "title: Test rule\nid: 0e1b0d7e-47c4-4c4f-9d7a-2d1f3b1e9a01\nname: test_rule\n"
        "logsource:\n    category: proxy\ndetection:\n" + textwrap.indent(textwrap.dedent(detection), "    ") + extra,
        encoding="utf-8",
    )
    return path


def kql(path: Path, **options) -> str:
    conversions, ruleset = convert([str(path)], "kql", include_bundled=False, **options)
    assert not ruleset.problems, ruleset.problems
    assert len(conversions) == 1
    assert conversions[0].ok, conversions[0].error
    return conversions[0].query


def where(path: Path, **options) -> str:
    return kql(path, **options).split("| where ", 1)[1]


def test_kql_bundled_rclone_rule() -> None:
    conversions, _ = convert([], "kql")
    assert conversions[0].query == 'imWebSession\n| where HttpUserAgent startswith "rclone/v"'


def test_kql_cased_startswith(tmp_path: Path) -> None:
    assert where(write_rule(tmp_path, "sel:\n    c-useragent|cased|startswith: 'Go-'\ncondition: sel\n")) == (
        'HttpUserAgent startswith_cs "Go-"'
    )
    assert where(write_rule(tmp_path, "sel:\n    c-useragent|startswith: 'Go-'\ncondition: sel\n")) == (
        'HttpUserAgent startswith "Go-"'
    )


def test_kql_escaped_question_mark(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    c-uri|contains: 'index.php\\?id='\ncondition: sel\n")
    assert where(path) == 'Url contains "index.php?id="'


def test_kql_trailing_backslash(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    c-uri|contains: 'C:\\Windows\\'\ncondition: sel\n")
    assert where(path) == 'Url contains "C:\\\\Windows\\\\"'


def test_kql_wildcard_inside_value(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "sel:\n    c-uri: '/a*b?c'\ncondition: sel\n")
    assert where(path) == 'Url matches regex "(?is)^/a.*b.c$"'


def test_kql_not_filter_grouped(tmp_path: Path) -> None:
    path = write_rule(
        tmp_path,
        "sel:\n    cs-method: POST\nfilter:\n    c-useragent|contains: ['curl*x', 'Go-']\n    cs-host|endswith: '.corp'\n"
        "condition: sel and not filter\n",
    )
    assert where(path) == (
        'HttpRequestMethod =~ "POST" and (not(((HttpUserAgent matches regex "(?is)^.*curl.*x.*$" or '
        'HttpUserAgent contains "Go-") and DstHostname endswith ".corp")))'
    )


def test_kql_keyword_uses_contains(tmp_path: Path) -> None:
    query = where(write_rule(tmp_path, "keywords:\n    - 'rclone'\ncondition: keywords\n"))
    assert query == '* contains "rclone"'
    assert " has " not in query


def test_kql_derived_url_fields(tmp_path: Path) -> None:
    query = kql(write_rule(tmp_path, "sel:\n    c-uri-extension: 'exe'\n    c-uri-query|contains: 'x='\ncondition: sel\n"))
    lines = query.splitlines()
    assert lines[0] == "imWebSession"
    assert lines[1].startswith("| extend UrlPath = case(Url matches regex")
    assert lines[2].startswith("| extend UrlQuery = iff(")
    # UrlExtension reads UrlPath, which an earlier extend must define.
    assert lines[3].startswith("| extend UrlExtension = extract(")
    assert lines[4] == '| where UrlExtension =~ "exe" and UrlQuery contains "x="'
    assert kusto_diagnostics([query]) == [[]]


def test_kql_cookie_rejected(tmp_path: Path) -> None:
    conversions, _ = convert(
        [str(write_rule(tmp_path, "sel:\n    cs-cookie|endswith: '=='\ncondition: sel\n"))], "kql", include_bundled=False
    )
    assert not conversions[0].ok
    assert "no cookie field" in conversions[0].error


def test_kql_sigma_filter_exclusion(tmp_path: Path) -> None:
    write_rule(tmp_path, "sel:\n    c-useragent|startswith: 'rclone/v'\ncondition: sel\n")
    (tmp_path / "filter.yml").write_text(
        textwrap.dedent(
            """\
            title: Backup hosts
            id: 5b0c7f0e-8f0a-4f4f-a7c1-6f1f1d0d2a11
            logsource:
                category: proxy
            filter:
                rules:
                    - test_rule
                backup_host:
                    cs-host|endswith:
                        - '.backup.example.net'
                        - 'backup.example.com'
                condition: not backup_host
            """
        ),
        encoding="utf-8",
    )
    conversions, ruleset = convert([str(tmp_path)], "kql", include_bundled=False)
    assert not ruleset.problems
    assert conversions[0].filters == ("Backup hosts",)
    assert conversions[0].query == (
        "imWebSession\n"
        '| where HttpUserAgent startswith "rclone/v"\n'
        '| where not((DstHostname endswith ".backup.example.net" or DstHostname endswith "backup.example.com"))'
    )


def test_kql_placeholder_modes(tmp_path: Path) -> None:
    path = write_rule(
        tmp_path, "sel:\n    c-useragent|startswith: 'rclone/v'\nfilter:\n    cs-host|expand: '%backup_hosts%'\n"
        "condition: sel and not filter\n",
    )
    lists = tmp_path / "lists.yml"
    lists.write_text("backup_hosts: [backup.example.com, 'vault.example.org']\n", encoding="utf-8")

    expanded = where(path, lists_path=str(lists))
    assert 'not((DstHostname in~ ("backup.example.com", "vault.example.org")))' in expanded

    let = kql(path, lists_path=str(lists), placeholders="let")
    assert let.splitlines()[0] == 'let backup_hosts = dynamic(["backup.example.com", "vault.example.org"]);'
    assert "not(DstHostname in~ (backup_hosts))" in let

    watchlist = kql(path, placeholders="watchlist")
    assert watchlist.splitlines()[0] == 'let backup_hosts = _GetWatchlist("backup_hosts") | project SearchKey;'

    conversions, _ = convert([str(path)], "kql", include_bundled=False)
    assert not conversions[0].ok
    assert "backup_hosts" in conversions[0].error


def test_kql_asim_parameters(tmp_path: Path) -> None:
    conversions, _ = convert([], "kql", asim_parameters=True, query_period="2h")
    assert conversions[0].query == (
        '_Im_WebSession(starttime=ago(2h), endtime=now(), httpuseragent_has_any=dynamic(["rclone"]))\n'
        '| where HttpUserAgent startswith "rclone/v"'
    )
    # "abc" in "xabcx/" is not a whole term, so nothing is pushed down.
    path = write_rule(tmp_path, "sel:\n    c-useragent|contains: 'abc/'\ncondition: sel\n")
    assert kql(path, asim_parameters=True).splitlines()[0] == "_Im_WebSession(starttime=ago(1h), endtime=now())"


def test_kql_blind_source_note() -> None:
    conversions, _ = convert([], "kql")
    assert any("ASimWebSessionSquidProxy" in note and "HttpUserAgent" in note for note in conversions[0].notes)


def test_sentinel_analytic_rule() -> None:
    conversions, _ = convert([], "kql")
    rule = analytic_rule(conversions[0], Schedule("1h", "2h"))
    for key in ("id", "name", "description", "severity", "requiredDataConnectors", "queryFrequency", "queryPeriod",
                "triggerOperator", "triggerThreshold", "tactics", "relevantTechniques", "query", "entityMappings"):
        assert key in rule, key
    assert rule["id"] == "2c03648b-e081-41a5-b9fb-7d854a915091"
    assert rule["severity"] == "Medium"
    assert rule["queryPeriod"] == "2h"
    assert rule["tactics"] == ["Exfiltration"]
    assert rule["relevantTechniques"] == ["T1567.002"]
    assert {mapping["entityType"] for mapping in rule["entityMappings"]} == {"IP", "Account", "URL", "Host"}
    columns = {mapping["entityType"]: mapping["fieldMappings"][0]["columnName"] for mapping in rule["entityMappings"]}
    # Host is the client machine; the destination is the URL entity.
    assert columns["Host"] == "SrcHostname"
    assert columns["URL"] == "Url"


def test_sentinel_tactics_deduplicated(tmp_path: Path) -> None:
    tags = (
        "tags:\n    - attack.command-and-control\n    - attack.command_and_control\n    - attack.t1071.001\n"
        "    - attack.T1071.001\n    - attack.exfiltration\n"
    )
    path = write_rule(tmp_path, "sel:\n    c-useragent: 'x'\ncondition: sel\n", extra=tags)
    conversions, _ = convert([str(path)], "kql", include_bundled=False)
    rule = analytic_rule(conversions[0], Schedule("1h", "1h"))
    assert rule["tactics"] == ["CommandAndControl", "Exfiltration"]
    assert rule["relevantTechniques"] == ["T1071.001"]
    resource = arm_template(conversions, Schedule("1h", "1h"))["resources"][0]
    assert resource["properties"]["tactics"] == ["CommandAndControl", "Exfiltration"]


@pytest.mark.parametrize(
    ("frequency", "period", "message"),
    [
        ("2h", "1h", "--query-period 1h is shorter than --query-frequency 2h"),
        ("1h", "0m", "--query-period 0m is outside Sentinel's limits"),
        ("1h", "99999d", "--query-period 99999d is outside Sentinel's limits"),
        ("4m", "1h", "--query-frequency 4m is outside Sentinel's limits"),
        ("15d", "15d", "--query-frequency 15d is outside Sentinel's limits"),
        ("15m", "2d", "at least 1h when the query period is 2d or more"),
        ("1x", "1h", "invalid --query-frequency '1x'"),
    ],
)
def test_sentinel_schedule_limits(frequency: str, period: str, message: str) -> None:
    from proxyhunt.export.sentinel import AnalyticRuleError

    with pytest.raises(AnalyticRuleError, match=message):
        Schedule(frequency, period)


def test_sentinel_schedule_bounds_accepted() -> None:
    assert Schedule("5m", "5m").query_period == "5m"
    assert Schedule("14d", "14d").query_frequency == "14d"
    assert Schedule("1h", "14d").query_period == "14d"


def test_arm_template() -> None:
    conversions, _ = convert([str(RCLONE_RULE)], "kql", include_bundled=False)
    template = arm_template(conversions, Schedule("15m", "1h"))
    resource = template["resources"][0]
    assert resource["type"] == "Microsoft.OperationalInsights/workspaces/providers/alertRules"
    assert resource["properties"]["queryFrequency"] == "PT15M"
    assert resource["properties"]["queryPeriod"] == "PT1H"
    assert resource["properties"]["techniques"] == ["T1567"]
    assert resource["properties"]["query"].startswith("imWebSession\n")


def test_cli_convert_sentinel_analytic(tmp_path: Path) -> None:
    output = tmp_path / "rule.yaml"
    completed = run_cli(
        "convert", "--target", "kql", "--sentinel-analytic", "--no-default-rules", "--rules", str(RCLONE_RULE), "--output", str(output)
    )
    assert completed.returncode == 0, completed.stderr
    assert yaml.safe_load(output.read_text(encoding="utf-8"))["name"] == "Rclone Activity via Proxy"
    assert "ASimWebSessionSquidProxy" in completed.stderr


def asim_schema() -> str:
    """Return the ASIM WebSession fields that proxyhunt maps, as a Kusto table schema."""
    types = {"TimeGenerated": "datetime", "SrcPortNumber": "int", "DstPortNumber": "int", "SrcBytes": "long", "DstBytes": "long"}
    names = [field.name for field in ASIM_FIELDS.values() if field.name and not field.derived]
    return "(" + ", ".join(f"{name}:{types.get(name, 'string')}" for name in names) + ")"


# _Im_WebSession and _GetWatchlist as Sentinel declares them, with the parameters proxyhunt uses.
ASIM_FUNCTIONS = [
    [
        "_Im_WebSession",
        "(starttime:datetime=datetime(null), endtime:datetime=datetime(null), url_has_any:dynamic=dynamic([]), "
        "httpuseragent_has_any:dynamic=dynamic([]), eventresultdetails_in:dynamic=dynamic([]))",
        "{ imWebSession }",
    ],
    ["_GetWatchlist", "(watchlistAlias:string)", "{ datatable(SearchKey:string)[] }"],
]


def _install_kusto_parser() -> None:
    """Install the locked npm packages of tests/, as ``.ci/run`` does, or skip when npm is missing."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so Microsoft's Kusto.Language parser cannot be installed")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TESTS, check=True, capture_output=True, timeout=600)


def kusto_diagnostics(queries: list[str]) -> list[list[str]]:
    """Return the Kusto.Language diagnostics of each query, analyzed against the ASIM WebSession table."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed, so Microsoft's Kusto.Language parser cannot run")
    package = TESTS / "node_modules" / "@kusto" / "language-service-next"
    if not package.is_dir():
        _install_kusto_parser()
    assert package.is_dir(), "npm ci in tests/ did not install @kusto/language-service-next; see tests/package.json"
    request = {"table": "imWebSession", "schema": asim_schema(), "functions": ASIM_FUNCTIONS, "queries": queries}
    completed = subprocess.run(
        [node, str(TESTS / "kusto_parse.js")], input=json.dumps(request), capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def test_kql_parses_with_kusto_language(tmp_path: Path) -> None:
    # A golden file of a rule file with several documents (a correlation and its base rule) holds one query per block.
    queries = {
        f"{path.name}#{number}": block
        for path in sorted(GOLDEN_KQL.glob("*.kql"))
        for number, block in enumerate(path.read_text(encoding="utf-8").split("\n\n"))
        if not block.startswith("error:")
    }
    path = write_rule(
        tmp_path, "sel:\n    c-useragent|startswith: 'rclone/v'\nfilter:\n    cs-host|expand: '%backup_hosts%'\n"
        "condition: sel and not filter\n",
    )
    lists = tmp_path / "lists.yml"
    lists.write_text("backup_hosts: [backup.example.com]\n", encoding="utf-8")
    queries["let"] = kql(path, lists_path=str(lists), placeholders="let")
    queries["watchlist"] = kql(path, placeholders="watchlist")
    queries["asim"] = kql(path, lists_path=str(lists), asim_parameters=True)
    assert len(queries) > 3

    diagnostics = kusto_diagnostics(list(queries.values()))
    failures = {name: messages for name, messages in zip(queries, diagnostics) if messages}
    assert not failures

    # The analyzer reports broken KQL, unknown columns and type errors, so the check above can fail.
    broken = kusto_diagnostics(
        ["imWebSession | where HttpUserAgent startswith", "imWebSession | where UrlPath == 'x'",
         "imWebSession | where SrcBytes contains 1"]
    )
    assert all(broken), broken


CORRELATION = """\
title: Many rclone requests
correlation:
    type: event_count
    rules:
        - 2c03648b-e081-41a5-b9fb-7d854a915091
    group-by:
        - c-ip
    timespan: 10m
    condition:
        gte: 3
"""


def test_kql_correlation_sliding_window(tmp_path: Path) -> None:
    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION, encoding="utf-8")
    conversions, _ = convert([str(path)], "kql")
    correlation = next(conversion for conversion in conversions if conversion.rule_path == str(path))
    assert correlation.ok, correlation.error
    query = correlation.query
    assert "| extend WindowStart = todatetime(Anchor.t), WindowEnd = todatetime(Anchor.t) + 600s" in query
    assert "between (WindowStart .. WindowEnd) | summarize Value = count()" in query
    assert "| where Value >= 3" in query
    assert kusto_diagnostics([query]) == [[]]


def test_esql_correlation_rejected(tmp_path: Path) -> None:
    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION, encoding="utf-8")
    conversions, _ = convert([str(path)], "esql")
    correlation = next(conversion for conversion in conversions if conversion.rule_path == str(path))
    assert not correlation.ok
    assert "sliding time windows" in correlation.error


def test_spl_correlation_rejects_lt(tmp_path: Path) -> None:
    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION.replace("gte: 3", "lt: 3"), encoding="utf-8")
    conversions, _ = convert([str(path)], "spl")
    correlation = next(conversion for conversion in conversions if conversion.rule_path == str(path))
    assert not correlation.ok
    assert "gt and gte" in correlation.error

    path.write_text(CORRELATION, encoding="utf-8")
    conversions, _ = convert([str(path)], "spl")
    query = next(conversion for conversion in conversions if conversion.rule_path == str(path)).query
    assert "| streamstats time_window=600s sum(CorrelatedHits) AS Value BY Web.src" in query


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "proxyhunt"
    return subprocess.run([str(executable), *arguments], capture_output=True, text=True, check=False)


def test_cli_convert_unconvertible_rule(tmp_path: Path) -> None:
    cookie = write_rule(tmp_path, "sel:\n    cs-cookie|endswith: '=='\ncondition: sel\n", name="cookie.yml")
    completed = run_cli("convert", "--target", "kql", "--no-default-rules", "--rules", str(RCLONE_RULE), "--rules", str(cookie))
    assert completed.returncode == 2
    assert "no cookie field" in completed.stderr
    # The rclone rule is still written, and the output names the rule it lacks.
    blocks = completed.stdout.split("\n\n")
    assert blocks[0] == (
        "// Rclone Activity via Proxy (2c03648b-e081-41a5-b9fb-7d854a915091)\n"
        'imWebSession\n| where HttpUserAgent startswith "rclone/v"'
    )
    assert blocks[1].startswith("// Not converted: Test rule (0e1b0d7e-47c4-4c4f-9d7a-2d1f3b1e9a01): ")
    assert "no cookie field" in blocks[1]


def test_cli_convert_broken_rule_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("title: x\ndetection: [unclosed\n", encoding="utf-8")
    completed = run_cli("convert", "--target", "spl", "--rules", str(broken))
    assert completed.returncode == 2
    assert f"error: {broken}" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_cli_convert_option_for_other_target() -> None:
    completed = run_cli("convert", "--target", "spl", "--asim-parameters")
    assert completed.returncode == 2
    assert "--asim-parameters is for KQL only" in completed.stderr


def test_cli_convert_missing_lists_file(tmp_path: Path) -> None:
    completed = run_cli("convert", "--target", "kql", "--lists", str(tmp_path / "missing.yml"))
    assert completed.returncode == 2
    assert "missing.yml" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_correlation_analytic_rule(tmp_path: Path) -> None:
    from proxyhunt.export.sentinel import AnalyticRuleError

    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION, encoding="utf-8")
    conversions, _ = convert([str(path)], "kql")
    correlation = next(conversion for conversion in conversions if conversion.rule_path == str(path))
    assert correlation.query.splitlines()[-1] == "| project SrcIpAddr = g0, WindowStart, WindowEnd, Value"

    rule = analytic_rule(correlation, Schedule("10m", "1h"))
    # Only the IP entity: the correlation's rows carry SrcIpAddr and no other mapped column.
    assert [mapping["entityType"] for mapping in rule["entityMappings"]] == ["IP"]

    with pytest.raises(AnalyticRuleError, match="more than --query-period 5m"):
        analytic_rule(correlation, Schedule("5m", "5m"))
    # The 10-minute window plus one 1h run interval does not fit in 1h, but fits in 1h10m.
    with pytest.raises(AnalyticRuleError, match="--query-frequency 1h plus that timespan"):
        analytic_rule(correlation, Schedule("1h", "1h"))
    assert analytic_rule(correlation, Schedule("1h", "70m"))["queryPeriod"] == "70m"


def test_kql_cidr_exact_for_ipv4_and_ipv6(tmp_path: Path) -> None:
    path = write_rule(
        tmp_path, "sel:\n    dst_ip|cidr:\n        - '2001:db8::/48'\n        - '2001:db8::/33'\n"
        "        - '10.0.0.0/8'\ncondition: not sel\n",
    )
    condition = where(path)
    # The prefix 2001:db8: would match the whole /32, and /33 would give the same prefix.
    assert "startswith" not in condition
    assert 'coalesce(ipv6_is_in_range(DstIpAddr, "2001:db8::/48"), false)' in condition
    assert 'coalesce(ipv6_is_in_range(DstIpAddr, "2001:db8::/33"), false)' in condition
    assert 'coalesce(ipv4_is_in_range(DstIpAddr, "10.0.0.0/8"), false)' in condition
    assert not kusto_diagnostics([kql(path)])[0]


def test_kql_asim_status_code_parameter(tmp_path: Path) -> None:
    path = write_rule(
        tmp_path, "sel:\n    sc-status:\n        - 200\n        - 302\n    c-uri|contains: '/api/'\ncondition: sel\n"
    )
    call = kql(path, asim_parameters=True).splitlines()[0]
    assert call == '_Im_WebSession(starttime=ago(1h), endtime=now(), url_has_any=dynamic(["api"]), eventresultdetails_in=dynamic(["200", "302"]))'


def test_arm_rule_text_not_expression(tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    path.write_text(
        "title: \"[parameters('workspace')]\"\ndescription: \"[concat('a', 'b')]\"\nlogsource:\n    category: proxy\n"
        "detection:\n    sel:\n        c-useragent: 'x'\n    condition: sel\n",
        encoding="utf-8",
    )
    conversions, _ = convert([str(path)], "kql", include_bundled=False)
    properties = arm_template(conversions, Schedule("1h", "1h"))["resources"][0]["properties"]
    # A leading '[[' is ARM's escape for a literal '[', so the title is not evaluated as an expression.
    assert properties["displayName"] == "[[parameters('workspace')]"
    assert properties["description"] == "[[concat('a', 'b')]"


BUNDLED_VOLUME_RULE = "Large Upload to Cloud Storage From One Source"
BUNDLED_MEGA_RULE = "Rclone Mega Chunked Upload"


def test_sentinel_period_derived_per_rule(tmp_path: Path) -> None:
    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION, encoding="utf-8")
    conversions, _ = convert([str(path)], "kql")
    correlation = next(conversion for conversion in conversions if conversion.rule_path == str(path))
    detection = next(conversion for conversion in conversions if conversion.rule_type == "detection")

    # Without --query-period a detection rule reads one run interval, and a correlation its timespan on top.
    assert analytic_rule(detection, Schedule("15m"))["queryPeriod"] == "15m"
    assert analytic_rule(correlation, Schedule("15m"))["queryPeriod"] == "25m"
    assert analytic_rule(correlation, Schedule("1h"))["queryPeriod"] == "70m"
    template = arm_template([correlation], Schedule("50m"))
    assert template["resources"][0]["properties"]["queryPeriod"] == "PT1H"


@pytest.mark.parametrize(
    ("frequency", "timespan", "message"),
    [
        ("14d", "1h", "over Sentinel's limit of 14d"),
        ("15m", "2d", "query frequency of at least 1h for a query period of 2d or more"),
    ],
)
def test_sentinel_derived_period_limits(tmp_path: Path, frequency: str, timespan: str, message: str) -> None:
    from proxyhunt.export.sentinel import AnalyticRuleError

    path = tmp_path / "correlation.yml"
    path.write_text(CORRELATION.replace("timespan: 10m", f"timespan: {timespan}"), encoding="utf-8")
    conversions, _ = convert([str(path)], "kql")
    correlation = next(conversion for conversion in conversions if conversion.rule_path == str(path))
    with pytest.raises(AnalyticRuleError, match=message):
        analytic_rule(correlation, Schedule(frequency))


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(300, "5m"), (301, "6m"), (3600, "1h"), (3900, "65m"), (7200, "2h"), (86400, "1d"), (90000, "25h")],
)
def test_kql_timespan_rounds_up(seconds: int, expected: str) -> None:
    from proxyhunt.export.sentinel import kql_timespan

    assert kql_timespan(seconds) == expected


def test_cli_sentinel_analytic_bundled_pack(tmp_path: Path) -> None:
    output = tmp_path / "rules.yaml"
    completed = run_cli("convert", "--target", "kql", "--sentinel-analytic", "--output", str(output))
    assert completed.returncode == 0, completed.stderr
    rules = {rule["name"]: rule for rule in yaml.safe_load_all(output.read_text(encoding="utf-8"))}
    assert rules["Rclone Activity via Proxy"]["queryPeriod"] == "1h"
    assert rules[BUNDLED_VOLUME_RULE]["queryPeriod"] == "2h"
    assert rules[BUNDLED_MEGA_RULE]["queryPeriod"] == "65m"
    assert not [message for message in kusto_diagnostics([rule["query"] for rule in rules.values()]) if message]


def test_cli_sentinel_explicit_period_too_short(tmp_path: Path) -> None:
    output = tmp_path / "rules.yaml"
    completed = run_cli("convert", "--target", "kql", "--sentinel-analytic", "--query-period", "1h", "--output", str(output))
    assert completed.returncode == 2
    assert f"({BUNDLED_MEGA_RULE}): correlation spans 300 seconds" in completed.stderr
    assert "raise --query-period to 65m or more" in completed.stderr

    text = output.read_text(encoding="utf-8")
    assert f"# Not converted: {BUNDLED_VOLUME_RULE}" in text
    names = [rule["name"] for rule in yaml.safe_load_all(text)]
    assert "Rclone Activity via Proxy" in names
    assert BUNDLED_MEGA_RULE not in names


def test_asim_parameters_cover_correlation_window() -> None:
    conversions, _ = convert([], "kql", asim_parameters=True, query_frequency="30m")
    queries = {conversion.rule_title: conversion.query for conversion in conversions}
    assert queries["Rclone Activity via Proxy"].startswith("_Im_WebSession(starttime=ago(30m)")
    # A 1h window read by runs every 30 minutes needs 90 minutes of events.
    assert "(_Im_WebSession(starttime=ago(90m)" in queries[BUNDLED_VOLUME_RULE]
    assert "(_Im_WebSession(starttime=ago(1h)" not in queries[BUNDLED_VOLUME_RULE]

    explicit, _ = convert([], "kql", asim_parameters=True, query_period="3h")
    assert all("ago(3h)" in conversion.query for conversion in explicit if conversion.ok)


def test_let_list_with_wildcards_uses_regex(tmp_path: Path) -> None:
    conversions, _ = convert([], "kql", placeholders="let")
    assert all(conversion.ok for conversion in conversions), [c.error for c in conversions if not c.ok]
    queries = {conversion.rule_title: conversion.query for conversion in conversions}

    # The volume correlation declares the list of its helper rule, which is not written on its own.
    assert "Request to a Cloud Storage Host" not in queries
    correlation = queries[BUNDLED_VOLUME_RULE]
    let = correlation.splitlines()[0]
    assert let.startswith('let cloud_storage_domains = "(?is)^(?:s3')
    assert "| where DstHostname matches regex cloud_storage_domains" in correlation

    diagnostics = kusto_diagnostics(list(queries.values()))
    assert not [message for message in diagnostics if message]


def test_let_list_wildcard_regex_matches_like_sigma(tmp_path: Path) -> None:
    import re

    path = write_rule(tmp_path, "sel:\n    cs-host|expand: '%storage%'\ncondition: sel\n")
    lists = tmp_path / "lists.yml"
    lists.write_text("storage: ['*.blob.core.windows.net', 'api.pcloud.com', 's3-*.amazonaws.com', 'a?c.example']\n", encoding="utf-8")
    let = kql(path, lists_path=str(lists), placeholders="let").splitlines()[0]
    pattern = json.loads(let.removeprefix("let storage = ").removesuffix(";"))

    for host in ("acct.BLOB.core.windows.net", "api.pcloud.com", "s3-eu-west-1.amazonaws.com", "abc.example"):
        assert re.fullmatch(pattern, host), host
    for host in ("blob.core.windows.net.evil.com", "xapi.pcloud.com", "api-pcloud.com", "abbc.example"):
        assert not re.fullmatch(pattern, host), host
