"""Golden files: the bundled rule and every SigmaHQ proxy rule of the corpus, converted for each target.

Each rule's output for each target is compared with a file under
``tests/golden/<target>/``: the query, or the line ``error: <reason>`` for a
rule that the target cannot express. After an intended change to the
converters, regenerate the files and review the diff::

    PROXYHUNT_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_export_golden.py

Reviewed by hand against the rule YAML, for KQL, SPL and ES|QL:
proxy_ua_rclone (bundled); proxy_ua_susp (a ``not filter`` over several
wildcard values, grouped in every target); proxy_webdav_external_execution
(a CIDR exclusion as ``ipv4_is_in_range``/``ipv6_is_in_range`` in KQL,
``cidrmatch`` in SPL and ``CIDR_MATCH`` in ES|QL, IPv6 included);
proxy_hktl_cobalt_strike_malleable_c2_requests (``cs-cookie``: rejected for
KQL and ES|QL, whose schemas have no cookie field, and ``Web.cookie`` in
SPL); proxy_download_susp_dyndns (``c-uri-extension`` through the derived
UrlExtension in KQL, ``url.extension`` in ES|QL);
proxy_pua_advanced_ip_scanner_update_check (``c-uri-query|contains|all``
through the derived UrlQuery); proxy_susp_flash_download_loc (an exclusion
by host suffix); proxy_susp_ipfs_cred_harvest and
proxy_exploit_cve_2023_36884_office_windows_html_rce_extenstion_ip_pattern_traffic
(``|re``: KQL ``matches regex``, ES|QL RLIKE translated to Lucene syntax or
rejected with the reason).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from proxyhunt.export import convert
from proxyhunt.export.output import statement
from proxyhunt.rules.loader import bundled_rule_files

from corpus import CORPUS

SIGMA_PROXY = CORPUS / "sigma-rules" / "proxy"
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("PROXYHUNT_REGENERATE_GOLDEN") == "1"
EXTENSIONS = {"kql": "kql", "spl": "spl", "esql": "esql", "sparksql": "spark.sql", "duckdbsql": "duckdb.sql"}


def rule_files() -> list[Path]:
    """Return the bundled rule files and the corpus proxy rules outside deprecated/."""
    files = list(bundled_rule_files())
    if SIGMA_PROXY.is_dir():
        files += sorted(path for path in SIGMA_PROXY.rglob("*.yml") if "deprecated" not in path.relative_to(SIGMA_PROXY).parts)
    return files


def expected_text(target: str, path: Path) -> tuple[Path, str]:
    conversions, ruleset = convert([str(path)], target, include_bundled=False)
    assert not ruleset.problems, ruleset.problems
    blocks = []
    for conversion in conversions:
        # SQL statements end with ';' as convert writes them, so that a golden file runs as a DuckDB script.
        blocks.append(statement(target, conversion.query) if conversion.ok else f"error: {conversion.error}")
    return GOLDEN / target / f"{path.stem}.{EXTENSIONS[target]}", "\n\n".join(blocks) + "\n"


@pytest.mark.parametrize("target", list(EXTENSIONS))
def test_golden_files(target: str) -> None:
    files = rule_files()
    if len(files) == 1:
        pytest.skip(f"only the bundled rule: the corpus of SigmaHQ proxy rules is not present at {SIGMA_PROXY}")
    mismatches = []
    for path in files:
        golden, text = expected_text(target, path)
        if REGENERATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
            continue
        assert golden.is_file(), f"{golden} is missing; regenerate with PROXYHUNT_REGENERATE_GOLDEN=1"
        if golden.read_text(encoding="utf-8") != text:
            mismatches.append(golden.name)
    assert not mismatches, f"output differs from the golden files {mismatches}; review, then regenerate"


def test_golden_bundled_rule_kql() -> None:
    golden, text = expected_text("kql", bundled_rule_files()[0])
    assert text == 'imWebSession\n| where HttpUserAgent startswith "rclone/v"\n'
    if not REGENERATE:
        assert golden.read_text(encoding="utf-8") == text
