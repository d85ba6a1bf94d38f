"""compose/docker-compose.yml, checked statically: no Docker engine runs in CI."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose.stack import COMPOSE_DIR, REPO, SAMPLE_ENV, MissingVariable, compose_model, interpolate

INFRASTRUCTURE = {"tempo", "prometheus", "alertmanager", "grafana", "rabbitmq"}
EXPECTED_SERVICES = INFRASTRUCTURE | {"api", "inventory", "worker"}


def services() -> dict[str, dict[str, Any]]:
    model = compose_model()
    result = model["services"]
    assert isinstance(result, dict)
    return result


def bind_sources(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) for every bind mount of the short form ``./host:/container[:ro]``."""
    mounts = []
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith((".", "/")):
            mounts.append(((COMPOSE_DIR / host).resolve(), container))
    return mounts


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) for each ``ip:host:container`` port."""
    result = []
    for port in service.get("ports", []):
        address, host, container = str(port).split(":")
        result.append((address, int(host), int(container)))
    return result


def test_compose_file_declares_the_whole_stack() -> None:
    assert set(services()) >= EXPECTED_SERVICES


def test_grafana_admin_password_has_no_default_in_the_file() -> None:
    text = (COMPOSE_DIR / "docker-compose.yml").read_text()
    with pytest.raises(MissingVariable, match="GRAFANA_ADMIN_PASSWORD"):
        interpolate(text, {})
    example = (COMPOSE_DIR / ".env.example").read_text()
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=$", example, flags=re.MULTILINE), (
        "the example holds no password"
    )
    grafana = services()["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == SAMPLE_ENV["GRAFANA_ADMIN_PASSWORD"]


def test_grafana_anonymous_viewer_only_behind_the_env_flag() -> None:
    assert services()["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    flagged = compose_model({**SAMPLE_ENV, "GRAFANA_ANONYMOUS_VIEWER": "true"})["services"]["grafana"]
    assert flagged["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert flagged["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_every_referenced_file_exists(name: str) -> None:
    service = services()[name]
    for host, _ in bind_sources(service):
        assert host.exists(), f"{name} mounts {host}, which does not exist"
    if "build" in service:
        context = (COMPOSE_DIR / service["build"]["context"]).resolve()
        assert context == REPO
        assert (context / service["build"]["dockerfile"]).is_file()


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        if "build" not in service:
            assert re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a release"


def test_host_ports_do_not_clash_and_bind_loopback() -> None:
    ports = [(host, name) for name, service in services().items() for _, host, _ in published_ports(service)]
    clashes = [port for port, count in Counter(port for port, _ in ports).items() if count > 1]
    assert clashes == [], f"host ports published twice: {clashes} in {ports}"
    for name, service in services().items():
        for address, _, _ in published_ports(service):
            assert address == "127.0.0.1", f"{name} publishes on {address}"


def test_depends_on_names_existing_services() -> None:
    names = set(services())
    for name, service in services().items():
        assert set(service.get("depends_on") or []) <= names, name


def test_prometheus_keeps_30_days_receives_remote_writes_and_stores_exemplars() -> None:
    command = services()["prometheus"]["command"]
    assert "--storage.tsdb.retention.time=30d" in command
    assert "--web.enable-remote-write-receiver" in command
    assert "--enable-feature=exemplar-storage" in command
    config = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--config.file="))
    mounted = {container: host for host, container in bind_sources(services()["prometheus"])}
    assert mounted[config].name == "prometheus.yml"
    # rule_files: [alerts.yml] resolves next to the config file, where alerts.yml is mounted.
    assert mounted[str(Path(config).parent / "alerts.yml")].name == "alerts.yml"


def test_rabbitmq_enables_its_prometheus_plugin() -> None:
    mounted = {container: host for host, container in bind_sources(services()["rabbitmq"])}
    plugins = mounted["/etc/rabbitmq/enabled_plugins"].read_text()
    assert "rabbitmq_prometheus" in plugins
    assert any(port == 15692 for _, _, port in published_ports(services()["rabbitmq"]))


def alertmanager_config(env: dict[str, str]) -> dict[str, Any]:
    content = compose_model(env)["configs"]["alertmanager-config"]["content"]
    parsed = yaml.safe_load(content)
    assert isinstance(parsed, dict)
    return parsed


def test_alertmanager_example_route_takes_its_webhook_from_env() -> None:
    config = alertmanager_config({**SAMPLE_ENV, "ALERTMANAGER_PAGE_WEBHOOK_URL": "https://chat.example/hook"})
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert {route["receiver"] for route in routes} <= set(receivers)
    page = next(route for route in config["route"]["routes"] if route["receiver"] == "page")
    assert page["matchers"] == ['severity="page"']
    assert receivers["page"]["webhook_configs"][0]["url"] == "https://chat.example/hook"
    unset = alertmanager_config(SAMPLE_ENV)
    assert unset["receivers"][1]["webhook_configs"][0]["url"].startswith("http://127.0.0.1:")
    services_config = services()["alertmanager"]
    assert services_config["configs"][0]["target"] in services_config["command"][0]


def test_demo_image_activates_the_bootstrap_through_sitecustomize_path() -> None:
    dockerfile = (COMPOSE_DIR / "demo" / "Dockerfile").read_text()
    assert "hoptrace sitecustomize-path" in dockerfile
    link = re.search(r'ln -s "\$site" (\S+)', dockerfile)
    assert link is not None
    assert re.search(rf"ENV PYTHONPATH={re.escape(link.group(1))}\b", dockerfile)
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    assert (COMPOSE_DIR / "demo" / "Dockerfile.dockerignore").read_text().count(".venv") == 1


@pytest.mark.parametrize("name", ["api", "inventory", "worker"])
def test_demo_services_run_the_harness_demo_modules(name: str) -> None:
    """The commands name modules that exist, and the variables the demo module reads are set."""
    service = services()[name]
    command = service["command"]
    if command[0] == "uvicorn":
        module, attribute = command[1].split(":")
    else:
        assert command[:2] == ["python", "-m"]
        module, attribute = command[2], "main"
    source = (REPO / Path(*module.removeprefix("hoptrace.").split("."))).with_suffix(".py")
    assert source.is_file(), f"{name} runs {module}, which is not in the repository"
    assert re.search(rf"^(?:def |async def )?{attribute}\b", source.read_text(), flags=re.MULTILINE)
    for variable in set(re.findall(r'os\.environ(?:\.get\(|\[)"(\w+)"', source.read_text())):
        assert variable in service["environment"], f"{name} reads {variable}, which compose does not set"
    assert service["environment"]["OTEL_SERVICE_NAME"] == name


def test_only_the_edge_service_reads_the_tenant_header() -> None:
    """A service with HOPTRACE_TENANT_HEADER is an edge and drops inbound baggage, losing the tenant."""
    readers = {
        name
        for name, service in services().items()
        if "HOPTRACE_TENANT_HEADER" in service.get("environment", {})
    }
    assert readers == {"api"}
