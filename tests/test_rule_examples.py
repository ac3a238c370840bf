"""Every bundled rule file's examples, run through a real hunt: a rule change that breaks detection fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

import proxyhunt.ruletest as ruletest
from proxyhunt.rules.loader import bundled_rule_files

REPOSITORY = Path(__file__).parents[1]
RULE_FILES = [*bundled_rule_files(), REPOSITORY / "examples" / "rules" / "proxy_ua_backup_tool.yml"]


def rule_id(path: Path) -> str:
    return path.stem


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=rule_id)
def test_rule_examples_pass(rule_file):
    [result] = ruletest.test_rules([str(rule_file)], include_bundled=False).results

    failures = "\n".join(f"{failure.location}: {failure.message}" for failure in result.failures)
    assert result.status != ruletest.NO_EXAMPLES, failures
    assert result.status == ruletest.PASS, failures
    assert result.examples >= 2


def test_bundled_pack_is_covered():
    names = {path.name for path in RULE_FILES}

    assert "proxy_ua_rclone.yml" in names
    assert any(path.parent.name == "rclone" for path in RULE_FILES)
