"""The compose/ stack's files, loaded the way Docker Compose, Prometheus and Grafana read them.

No Docker engine runs in CI, so the tests read the files instead: Compose's variable interpolation is
re-implemented here (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``$$``), following the Compose specification's "Interpolation" section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ALERTS = COMPOSE_DIR / "prometheus" / "alerts.yml"
ALERTS_TEST = COMPOSE_DIR / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = COMPOSE_DIR / "prometheus" / "prometheus.yml"
TEMPO_CONFIG = COMPOSE_DIR / "tempo" / "tempo.yaml"
DATASOURCES = COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
DASHBOARD_PROVIDERS = COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"
DASHBOARD_DIR = COMPOSE_DIR / "grafana" / "dashboards"
README = COMPOSE_DIR / "README.md"

# Values a user would put in compose/.env; the required ones have no default in the file.
SAMPLE_ENV = {"GRAFANA_ADMIN_PASSWORD": "example-only"}

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?$", re.DOTALL)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` (or ``${VAR?message}``) variable was not set: Compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables in ``text`` as Docker Compose does; raises MissingVariable or ValueError."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("bare"):
            return env.get(match.group("bare"), "")
        braced = _BRACED.match(match.group("braced"))
        if braced is None:
            raise ValueError(f"invalid interpolation: {match.group(0)!r}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        value = env.get(name)
        unset_or_empty = not value
        if op == ":-":
            return arg if unset_or_empty else str(value)
        if op == "-":
            return arg if value is None else value
        if (op == ":?" and unset_or_empty) or (op == "?" and value is None):
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def compose_model(env: Mapping[str, str] = SAMPLE_ENV) -> dict[str, Any]:
    """docker-compose.yml after YAML merge keys and interpolation (like ``docker compose config``)."""
    model = _interpolate_tree(load_yaml(COMPOSE_FILE), env)
    assert isinstance(model, dict)
    return model


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule in alerts.yml, in file order."""
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]
