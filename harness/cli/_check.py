"""The implementation of ``hoptrace check`` and ``hoptrace trace``, for CI pipelines in any language."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hoptrace.harness._errors import (
    HarnessError,
    InvalidExpression,
    TraceAssertionError,
    TraceIncomplete,
    TraceNotFound,
)
from hoptrace.harness.assertions import _checks
from hoptrace.harness.assertions._chain import parse_chain
from hoptrace.harness.assertions._checks import PROPAGATION_HINT, Verdict
from hoptrace.harness.assertions._trace import Trace
from hoptrace.harness.assertions._wait import inferred_entry, wait_for_trace
from hoptrace.harness.launch._services import DEFAULT_EXPORT_DELAY_MS
from hoptrace.harness.tempo._client import TempoClient


@dataclass(frozen=True)
class _Expectation:
    name: str
    check: Callable[[Trace], Verdict]


def run_check(args: argparse.Namespace) -> int:
    """Wait for the trace, evaluate every expectation, print the verdicts; 0 ok, 1 failed, 2 bad input.

    Once the backend's facts say the trace is complete (nothing still running), a failing expectation
    fails at once instead of waiting for ``--timeout``."""
    try:
        expectations = _expectations(args)
        args.trace_id, caller = _trace_and_caller(args)
    except InvalidExpression as exc:
        print(f"hoptrace check: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    error = ""
    unfinished = False
    with TempoClient(args.tempo_url) as client:
        try:
            trace = wait_for_trace(
                client,
                args.trace_id,
                until=[e.check for e in expectations],
                timeout=args.timeout,
                export_delay_ms=_export_delay_ms(args.export_delay_ms),
                entry_span_id=caller,
                infer_entry=caller is None,
                fail_fast=True,
            )
        except TraceAssertionError:
            print(f"hoptrace check: trace {args.trace_id} is complete (nothing still runs) and does not hold")
            trace = _fetched(client, args.trace_id, caller)
        except (TraceIncomplete, TraceNotFound) as exc:
            error = str(exc)
            unfinished = bool(getattr(exc, "pending", ()))
            trace = _fetched(client, args.trace_id, caller)
        except HarnessError as exc:
            print(f"hoptrace check: {exc}", file=sys.stderr)
            return 1
    elapsed = time.monotonic() - started
    verdicts = [e.check(trace) for e in expectations] if trace.spans else []
    if unfinished:  # unfinished work explains the failures: never blame propagation for it
        verdicts = [dataclasses.replace(v, why=v.why.replace(PROPAGATION_HINT, "")) for v in verdicts]
    failed = [v for v in verdicts if not v.ok]
    if error and (unfinished or not trace.spans):
        print(error)
    else:
        for verdict in failed:
            print(f"FAILED {trace.render(verdict)}\n")
    if not error and not failed:
        names = "; ".join(e.name for e in expectations) or "the trace arrived"
        print(f"ok: trace {trace.trace_id}, {len(trace)} spans: {names}\n{trace.render()}")
    if args.junit_xml:
        _write_junit(Path(args.junit_xml), args.trace_id, expectations, verdicts, trace, error, elapsed)
    return 1 if error or failed else 0


def print_trace(trace_id: str, tempo_url: str, timeout: float) -> int:
    """Print the trace as a tree; 1 when it cannot be found."""
    with TempoClient(tempo_url) as client:
        try:
            if timeout > 0:
                trace = wait_for_trace(client, trace_id, timeout=timeout)
            else:
                trace = Trace(client.get_trace(trace_id) or [])
        except HarnessError as exc:
            print(f"hoptrace trace: {exc}", file=sys.stderr)
            return 1
    if not trace.spans:
        print(f"hoptrace trace: trace {trace_id} not found at {tempo_url}", file=sys.stderr)
        return 1
    print(trace.render())
    return 0


def _fetched(client: TempoClient, trace_id: str, caller: str | None) -> Trace:
    spans = client.get_trace(trace_id) or []
    return Trace(spans, entry_span_id=caller or inferred_entry(spans))


def _trace_and_caller(args: argparse.Namespace) -> tuple[str, str | None]:
    """The trace id and the caller's span id from ``--trace-id``/``--traceparent``/``--caller-span-id``."""
    caller: str | None = args.caller_span_id
    trace_id: str = args.trace_id or ""
    if args.traceparent:
        parts = args.traceparent.strip().lower().split("-")
        if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or not _is_hex("".join(parts[1:3])):
            raise InvalidExpression(
                f"--traceparent wants 00-<32 hex trace id>-<16 hex span id>-<flags>, got {args.traceparent!r}"
            )
        trace_id, caller = parts[1], caller or parts[2]
    if caller is not None and (len(caller) != 16 or not _is_hex(caller)):
        raise InvalidExpression(f"--caller-span-id wants 16 hex digits, got {caller!r}")
    return trace_id, caller.lower() if caller else None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text.lower()) and int(text, 16) != 0


def _export_delay_ms(given: float | None) -> float:
    if given is not None:
        return given
    try:
        return float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_EXPORT_DELAY_MS))
    except ValueError:
        return DEFAULT_EXPORT_DELAY_MS


def _expectations(args: argparse.Namespace) -> list[_Expectation]:
    found: list[_Expectation] = []
    for text in args.expect_chain:
        parsed = parse_chain(text)
        found.append(_Expectation(f"chain {parsed}", partial(_checks.chain, expression=parsed)))
    for text in args.expect_attr:
        key, sep, value = text.partition("=")
        wanted: object = value if sep else _checks.ANY
        found.append(_Expectation(f"attribute {text}", partial(_checks.attribute, key=key, value=wanted)))
    for text in args.expect_count:
        hop, sep, number = text.rpartition("=")
        if not sep or not number.isdigit():
            raise InvalidExpression(f"--expect-count wants HOP=N, e.g. inventory:SERVER=2, got {text!r}")
        _checks.parse_hop(hop)
        found.append(
            _Expectation(f"count {text}", partial(_checks.span_count, selector=hop, exactly=int(number)))
        )
    if args.expect_propagation:
        found.append(_Expectation("propagation", _checks.propagation))
    return found


def _write_junit(
    path: Path,
    trace_id: str,
    expectations: list[_Expectation],
    verdicts: list[Verdict],
    trace: Trace,
    error: str,
    elapsed: float,
) -> None:
    suite = ET.Element("testsuite", name="hoptrace check", time=f"{elapsed:.3f}")
    cases: list[tuple[str, Verdict | None]] = [
        (e.name, v) for e, v in zip(expectations, verdicts, strict=False)
    ]
    if error and not trace.spans:
        cases = [("trace arrived", None)]
    for name, verdict in cases:
        case = ET.SubElement(suite, "testcase", classname=f"hoptrace.trace.{trace_id}", name=name)
        if verdict is None or not verdict.ok:
            text = trace.render(verdict) if verdict is not None else error
            message = (verdict.why.splitlines() or [""])[0] if verdict is not None else error.splitlines()[0]
            ET.SubElement(case, "failure", message=message).text = text
    failures = sum(1 for case in suite if case.find("failure") is not None)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
