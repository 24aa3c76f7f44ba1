"""Generate the gRPC stubs from protos/ into serving/ (package-qualified imports: baton.serving.*).

Usage: python scripts/gen_protos.py [OUT_ROOT]   (default: the repository root; tests pass a temp dir)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parent.parent
PROTOS = REPO / "protos"
# proto folder (relative to protos/) -> package folder in the repo
TARGETS = {"baton/serving/v1": "serving/v1", "baton/serving/kserve": "serving/kserve"}
# The KServe messages live in package `inference`, as in tritonclient and other KServe stubs: registering them in
# protobuf's default pool would clash with those in the same process. They get a private pool instead.
PRIVATE_POOL = {"serving/kserve"}
_DEFAULT = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_PRIVATE = (
    "# baton: a private pool, so these `inference.*` messages can coexist with tritonclient's.\n"
    "_POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = _POOL.AddSerializedFile("
)


def generate(out_root: Path) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *files,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for src_dir, dest_dir in TARGETS.items():
            dest = out_root / dest_dir
            dest.mkdir(parents=True, exist_ok=True)
            for generated in sorted((Path(tmp) / src_dir).glob("*_pb2*")):
                text = generated.read_text(encoding="utf-8")
                if dest_dir in PRIVATE_POOL and generated.name.endswith("_pb2.py"):
                    if _DEFAULT not in text:
                        raise SystemExit(f"unexpected protoc output in {generated.name}: cannot make its pool private")
                    text = text.replace(_DEFAULT, _PRIVATE)
                (dest / generated.name).write_text(text, encoding="utf-8")
                written.append(dest / generated.name)
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO):
        print(path)
