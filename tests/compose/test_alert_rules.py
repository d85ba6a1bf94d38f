"""compose/prometheus/alerts.yml: valid, documented, and proven by promtool to fire and stay silent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compose.promql import PROMTOOL
from tests.compose.stack import ALERTS, ALERTS_TEST, README, alert_rules, load_yaml


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules_accepts_alerts() -> None:
    result = promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", ALERTS_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts no unit test sees firing"
    assert names - silent == set(), "alerts no unit test sees staying silent"


def test_unit_tests_fail_when_a_threshold_no_longer_holds(tmp_path: Path) -> None:
    """The unit tests can fail: with the tenant threshold above acme's 40% error ratio, they must."""
    rules = ALERTS.read_text()
    mutated = rules.replace("          > 0.1\n", "          > 0.5\n")
    assert mutated != rules
    (tmp_path / "alerts.yml").write_text(mutated)
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    result = promtool("test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0
    assert "HoptraceTenantErrorSpike" in result.stdout + result.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_is_documented(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert annotations.get("summary") and annotations.get("description")
    labels = rule["labels"]
    assert isinstance(labels, dict) and labels.get("severity") in {"page", "ticket"}
    anchor = str(rule["alert"]).lower()
    assert annotations.get("runbook_url") == f"compose/README.md#{anchor}"
    headings = re.findall(r"^#+\s+`?(\w+)`?\s*$", README.read_text(), flags=re.MULTILINE)
    assert rule["alert"] in headings, f"compose/README.md has no runbook heading for {rule['alert']}"


def test_span_metric_rules_count_each_call_once() -> None:
    """Tempo remote-writes a second copy of the span metrics (source="tempo"); the rules skip it."""
    for rule in alert_rules():
        expr = str(rule["expr"])
        for selector in re.findall(r"traces_spanmetrics_\w+\{([^}]*)\}", expr):
            assert 'source!="tempo"' in selector, f"{rule['alert']}: {selector}"
