"""The committed gRPC stubs are exactly what protos/ generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import REPO


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_protos.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*"))
    assert len(generated) == 9  # classifier, recognizer, kserve: _pb2, _pb2.pyi, _pb2_grpc each
    stale = [str(rel) for rel in generated if (REPO / rel).read_bytes() != (tmp_path / rel).read_bytes()]
    assert not stale, f"stubs out of date, run `make protos`: {stale}"
