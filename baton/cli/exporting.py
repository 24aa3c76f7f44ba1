"""`baton export`: a run directory to a verified bundle."""

from __future__ import annotations

from typing import Annotated

import typer

from baton._format import format_bundle
from baton.cli._app import app
from baton.cli._options import Opt
from baton.export.config import GateThresholds, Int8Scales, Optimize, Quantize, QuantPreset
from baton.serving.long_text import ChunkCombine, LongText

__all__ = ["export"]


@app.command()
def export(
    run_dir: Annotated[str, typer.Argument(help="A finished `baton train` output directory.")],
    output: Annotated[str, Opt("--output", "-o", help="Bundle directory to write.")],
    device: Annotated[str, Opt(help="cpu: fp32 + int8 bundle; cuda: fp32 + fp16 (O4) bundle.")] = "cpu",
    optimize: Annotated[Optimize, Opt(help="Graph optimisation.")] = Optimize.O2,
    quantize: Annotated[Quantize, Opt(help="int8 quantization (CPU bundles only).")] = Quantize.INT8,
    int8_scales: Annotated[
        Int8Scales,
        Opt(
            help="fixed: activation scales calibrated on training texts, so a text's answer never depends on its "
            "batch; dynamic: scaled per batch at run time (answers move with batch-mates)."
        ),
    ] = Int8Scales.FIXED,
    preset: Annotated[QuantPreset, Opt(help="Dynamic int8's preset (auto: from this CPU).")] = QuantPreset.AUTO,
    long_text: Annotated[
        LongText, Opt(help="Classifiers, texts past the window by default: truncate, or chunk in windows.")
    ] = LongText.TRUNCATE,
    chunk_combine: Annotated[
        ChunkCombine, Opt(help="How a chunked text's windows combine by default: mean or max.")
    ] = ChunkCombine.MEAN,
    parity_samples: Annotated[int, Opt(help="Samples for the parity gates.")] = 512,
    calibration_texts: Annotated[
        int, Opt(help="Training texts whose activation ranges fix int8's scales (--int8-scales fixed).")
    ] = 512,
    calibration_file: Annotated[
        str | None,
        Opt(help="Labelled texts for the gates and int8's scales (default: validation, and training texts)."),
    ] = None,
    allow_fallback: Annotated[bool, Opt(help="If the int8 gate fails, ship fp32 only and record why.")] = False,
    int8_gate: Annotated[
        str,
        Opt(
            help="confident: agreement where fp32 is sure + the accuracy drop's 95% interval; agreement: raw "
            "agreement and the point drop (the earlier rule)."
        ),
    ] = "confident",
    allow_unjudged_int8: Annotated[
        bool,
        Opt(
            help="Ship int8 when too few parity texts can judge it (fewer than "
            f"{GateThresholds().min_int8_evidence} sure decisions); the manifest "
            "records it as unjudged."
        ),
    ] = False,
    allow_untrained: Annotated[
        bool, Opt(help="Export a run that does not beat the trivial baseline (a constant answer).")
    ] = False,
    overwrite: Annotated[bool, Opt(help="Replace an existing bundle once the new one is complete.")] = False,
) -> None:
    """Export a trained run to a verified ONNX bundle (Optimum export, optimisation, int8, parity gates)."""
    from baton.export import ExportConfig, export_bundle

    cfg = ExportConfig(
        run_dir=run_dir,
        output=output,
        device=device,
        optimize=optimize,
        quantize=quantize,
        preset=preset,
        int8_scales=int8_scales,
        long_text=long_text,
        chunk_combine=chunk_combine,
        parity_samples=parity_samples,
        calibration_texts=calibration_texts,
        calibration_file=calibration_file,
        allow_fallback=allow_fallback,
        allow_untrained=allow_untrained,
        allow_unjudged=allow_unjudged_int8,
        gates=GateThresholds(int8_gate=int8_gate),
        overwrite=overwrite,
    )
    result = export_bundle(cfg)
    typer.echo(format_bundle(result.bundle.root))
