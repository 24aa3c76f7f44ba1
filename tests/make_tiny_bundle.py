"""Write tests/data/tiny-bundle: the tiny model of conftest.py trained on the demo reviews and exported (fp32 + int8),
committed so that the serving stage's tests run on a real bundle without torch.

    python tests/make_tiny_bundle.py

Rerun it when the bundle schema or the export changes: tests/export/test_bundle.py fails while the committed bundle
and a fresh export disagree on what a bundle holds.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import COMMITTED_BUNDLE, REVIEWS, build_tiny_model, train_tiny


def main() -> None:
    from baton.export import ExportConfig, export_bundle

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "model")
        train_tiny(model, REVIEWS, Path(tmp) / "run", test_file=str(REVIEWS / "test.jsonl"))
        export_bundle(ExportConfig(run_dir=str(Path(tmp) / "run"), output=str(Path(tmp) / "bundle")))
        shutil.rmtree(COMMITTED_BUNDLE, ignore_errors=True)
        shutil.copytree(Path(tmp) / "bundle", COMMITTED_BUNDLE)
    print(f"wrote {COMMITTED_BUNDLE}")


if __name__ == "__main__":
    main()
