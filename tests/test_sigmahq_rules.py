"""SigmaHQ's public proxy rules: each one loads, converts and runs over every public proxy log sample.

Only a rule that pySigma itself rejects may be left out, and it must be listed
in PYSIGMA_REJECTS with pySigma's reason. SigmaHQ's rclone-related rules are
for process, file, DNS and network events, so they are set aside as not proxy
rules, each with its reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyhunt.check import READY, SKIPPED, check_rules
from proxyhunt.hunt import HuntResult, hunt

from corpus import CORPUS

PROXY_RULES = CORPUS / "sigma-rules" / "proxy"
RCLONE_RULES = CORPUS / "sigma-rules" / "rclone-related"

pytestmark = pytest.mark.skipif(not PROXY_RULES.is_dir(), reason=f"the SigmaHQ rules are not present at {PROXY_RULES}")

# Folders of the corpus that hold proxy logs.
LOG_FOLDERS = (
    "apache-combined",
    "bluecoat-proxysg-elff",
    "cef",
    "iis-w3c",
    "sentinel-commonsecuritylog-csv",
    "sentinel-table-json",
    "squid-native",
    "vendor-json",
    "zeek-corelight-json",
    "zeek-http-json",
    "zeek-http-tsv",
)

# Rule file name -> the reason pySigma 1.5.1 rejects it. None is rejected today.
PYSIGMA_REJECTS: dict[str, str] = {}


def current_rule_files() -> list[Path]:
    """Return the proxy rule files outside deprecated/."""
    return sorted(path for path in PROXY_RULES.rglob("*.yml") if "deprecated" not in path.relative_to(PROXY_RULES).parts)


@pytest.fixture(scope="module")
def corpus_hunt() -> HuntResult:
    logs = [str(CORPUS / folder) for folder in LOG_FOLDERS if (CORPUS / folder).is_dir()]
    rules = [str(path) for path in current_rule_files() if path.name not in PYSIGMA_REJECTS]
    return hunt(logs, rule_paths=rules, include_bundled=False)


def test_proxy_rules_present():
    assert len(current_rule_files()) >= 50


def test_every_proxy_rule_loads(corpus_hunt):
    problems = [str(problem) for problem in corpus_hunt.ruleset.problems]
    assert problems == []
    loaded = {Path(rule.path).name for rule in corpus_hunt.ruleset.rules}
    expected = {path.name for path in current_rule_files()} - set(PYSIGMA_REJECTS)
    assert expected - loaded == set()


def test_every_proxy_rule_converts(corpus_hunt):
    failures = {rule.loaded.path: rule.error for rule in corpus_hunt.compiled if rule.error}
    assert failures == {}


def test_every_proxy_rule_runs(corpus_hunt):
    ran = set(corpus_hunt.hits_per_rule)
    missing = [f"{rule.loaded.title} ({rule.loaded.path})" for rule in corpus_hunt.compiled if rule.loaded.key not in ran]
    assert missing == []


def test_corpus_logs_read(corpus_hunt):
    assert [report.path for report in corpus_hunt.files if report.error] == []
    assert sum(report.parsed for report in corpus_hunt.files) > 1000


def test_rules_check_lists_every_proxy_rule():
    check = check_rules([str(PROXY_RULES)], include_bundled=False)

    not_ready = [f"{status.path}: {status.status}: {status.reason}" for status in check.statuses if status.status != READY]
    assert not_ready == []
    assert len(check.statuses) >= len(current_rule_files())


def test_rclone_related_rules_set_aside_with_reason():
    check = check_rules([str(RCLONE_RULES)], include_bundled=False)

    assert check.statuses
    for status in check.statuses:
        assert status.status == SKIPPED, status
        assert status.reason.startswith("log source is not web-proxy traffic"), status
