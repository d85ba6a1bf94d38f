"""A backend down for a full minute under traffic: warning lines printed vs exporter records counted.

Runs the scenario of ``tests/e2e/test_log_noise.py`` (a FastAPI service under ``hoptrace run`` exporting to
a closed port, one request at a time, for ``--seconds``) and prints how many log records the OTLP exporter
produced (what the service would print without hoptrace's counting: 20-33 a minute measured) against the
warning lines hoptrace printed. Goal: 1 line, whatever the exporter produced.

    .venv/bin/python bench/backend_outage.py [--seconds 60] [--protocol grpc|http/protobuf]
        [--export-timeout S]

The test suite runs the same scenario until the exporter has produced ``EXPORTER_RECORDS`` records (about
15 s); this is the full-minute version.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.test_log_noise import down_backend_launcher, run_outage, warning_lines  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--protocol", choices=["grpc", "http/protobuf"], default="grpc")
    parser.add_argument(
        "--export-timeout", help="OTEL_EXPORTER_OTLP_TIMEOUT in seconds (default: the exporter's own, 10)"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    with down_backend_launcher(args.protocol) as launcher:
        if args.export_timeout:
            launcher.env["OTEL_EXPORTER_OTLP_TIMEOUT"] = args.export_timeout
        counts, log = run_outage(launcher, seconds=args.seconds)
    printed = warning_lines(log)
    records = counts["exporter_log_records"]
    print(f"backend down for {args.seconds:.0f} s: {counts['dropped_spans']} spans dropped")
    print(f"  exporter log records (upstream prints them): {records}")
    print(f"  warning lines hoptrace printed:              {len(printed)}")
    print(f"  ratio printed / exporter records:            {len(printed) / max(records, 1):.3f}")
    for line in printed:
        print(f"    {line}")
    sys.exit(0 if len(printed) == 1 else 1)


if __name__ == "__main__":
    main()
