"""Score every int8 recipe of `baton export` on a finished run, without stopping at the first that passes.

Usage: python scripts/int8_recipes.py RUN_DIR [PARITY_SAMPLES]
Prints, per graph (the plain export; the O2-fused one baton quantizes) and recipe, the argmax agreement with the fp32
(O2) export, the accuracy and the file size: the figures behind
`baton.export.onnx.INT8_RECIPES` and the int8 notes in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from baton.export import onnx as steps
from baton.export import parity
from baton.export.config import ExportConfig
from baton.export.exporter import _parity_inputs


def main() -> None:
    run = Path(sys.argv[1])
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    cfg = ExportConfig(run_dir=str(run), output=str(run / "unused"), parity_samples=samples)
    train_args = json.loads((run / "train_args.json").read_text())
    config = json.loads((run / "model" / "config.json").read_text())
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    multi = config.get("problem_type") == "multi_label_classification"
    inputs = _parity_inputs(cfg, run, train_args, labels, multi)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = steps.export_fp32(run / "model", Path(tmp), "text-classification", None)
        plain = onnx_dir / "model.onnx"
        fused = steps.optimize_graph(onnx_dir, cfg.optimize)
        fp32 = parity.onnx_logits(fused, inputs)
        print(f"fp32: accuracy {parity.summary({'fp32': fp32}, inputs, multi).get('fp32', float('nan')):.4f}")
        typed, kind = steps.quantizable_graph(fused, plain)
        for graph, source in (("plain", plain), (kind, typed)) if kind != "plain" else (("plain", plain),):
            for recipe in steps.INT8_RECIPES:
                exclude = steps.int8_exclusions(source, recipe)
                model = steps.quantize_int8(source, cfg.resolved_preset, exclude, tag=f"int8-{graph}-{recipe}")
                logits = parity.onnx_logits(model, inputs)
                accuracy = parity.summary({"int8": logits}, inputs, multi).get("int8", float("nan"))
                print(
                    f"{graph} graph, {recipe}: {len(exclude)} MatMuls in fp32, "
                    f"agreement {parity.agreement(fp32, logits, multi):.4f}, accuracy {accuracy:.4f}, "
                    f"{model.stat().st_size / 2**20:.1f} MiB",
                    flush=True,
                )


if __name__ == "__main__":
    main()
