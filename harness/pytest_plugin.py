"""hoptrace's pytest plugin (entry point ``pytest11``): hooks and fixtures only, heavy imports lazy."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hoptrace", "hoptrace end-to-end trace assertions")
    group.addoption(
        "--trace-backend",
        choices=("embedded", "tempo"),
        default="embedded",
        help="trace backend for the hoptrace fixtures (default: embedded)",
    )
