"""Regenerate ``*_pb2.py`` and ``*_pb2.pyi`` here from this folder's ``.proto`` files (ours).

Run ``.venv/bin/python -m hoptrace.harness.backend._tempopb.generate`` after editing a ``.proto``; it needs
grpcio-tools (in the ``test`` extra). The generated modules are committed so that the backend needs no
build step; ``tests/harness/backend/test_grpc_querier.py`` checks they match the ``.proto`` files.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOS = ("common.proto", "tempo.proto")
_PACKAGE_PATH = Path("hoptrace/harness/backend/_tempopb")


def generate(destination: Path) -> list[Path]:
    """Compile the ``.proto`` files into ``destination``; returns the generated files.

    Raises ``RuntimeError`` with protoc's output when compilation fails.
    """
    from grpc_tools import protoc  # a test/dev dependency, imported only here

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        package = root / _PACKAGE_PATH
        package.mkdir(parents=True)
        for name in PROTOS:
            shutil.copy(HERE / name, package / name)
        arguments = [
            "protoc",
            f"-I{root}",
            f"--python_out={root}",
            f"--pyi_out={root}",
            *(str(_PACKAGE_PATH / name) for name in PROTOS),
        ]
        if protoc.main(arguments) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(PROTOS)}")
        generated = []
        for path in sorted(package.glob("*_pb2.py*")):
            target = destination / path.name
            target.write_text(_without_runtime_pin(path.read_text(encoding="utf-8")), encoding="utf-8")
            generated.append(target)
        return generated


def _without_runtime_pin(code: str) -> str:
    """Drop the generator's protobuf runtime version check.

    protoc pins the runtime to its own version (7.x for grpcio-tools 1.85), beyond the range hoptrace
    declares (``protobuf>=5.28``). The code it generates needs only the serialized descriptor and the
    ``builder`` helpers, which every protobuf in that range has, so the pin is removed, not the range.
    """
    return re.sub(
        r"from google\.protobuf import runtime_version as _runtime_version\n",
        "",
        re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n", "", code),
    )


if __name__ == "__main__":
    for path in generate(HERE):
        print(path)
