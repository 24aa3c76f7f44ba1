"""Commands that use a model: predict (embedded or a server), evaluate, score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from baton.cli._app import app
from baton.cli._options import ChunkCombineOpt, LongTextOpt, Opt, _read_lines, _tls, _with_pairs
from baton.errors import BatonError
from baton.serving.long_text import LongText
from baton.task import Task
from baton.tools.score.job import PREFIX

__all__ = ["evaluate", "predict", "score"]


@app.command()
def predict(
    target: Annotated[
        str | None, typer.Argument(help="Bundle directory; with --server there is none, and every argument is a text.")
    ] = None,
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
    model_name: Annotated[
        str | None, Opt(help="--server of several models (a model repository): the model to ask.")
    ] = None,
    file: Annotated[Path | None, Opt("--input", help="Read one text per line from this UTF-8 file.")] = None,
    top_k: Annotated[int | None, Opt(help="Also return the k best labels.")] = None,
    aggregation: Annotated[
        str | None,
        Opt(help="Entity models: simple, first, max, average or none (default: the bundle's, see GetModelInfo)."),
    ] = None,
    long_text: LongTextOpt = None,
    chunk_combine: ChunkCombineOpt = None,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    variant: Annotated[str | None, Opt(help="fp32, int8 or fp16 (default: the best for the device).")] = None,
) -> None:
    """Classify texts, or find their entities, with a bundle or a running server; one JSON object per line.

    The two sources take the same texts: arguments, --input FILE, or lines on stdin."""
    from baton.serving import Predictor

    chunking = {"long_text": long_text and long_text.value, "chunk_combine": chunk_combine and chunk_combine.value}
    if server is not None:
        given = [target, *(texts or [])] if target is not None else texts
        lines, where = _read_lines(given, file)
        tls = _tls(tls_ca, tls_cert, tls_key)
        _predict_remote(server, token, tls, lines, where, text_pair, top_k, aggregation, model_name, chunking)
        return
    if target is None:
        raise BatonError("give a bundle directory, or --server HOST:PORT of a running `baton serve`")
    predictor = Predictor.load(target, device=device, variant=variant)
    if predictor.task is Task.ENTITIES:
        if text_pair:
            raise BatonError(f"--text-pair: {target} finds entities in single texts")
        if long_text or chunk_combine:
            raise BatonError(f"--long-text/--chunk-combine: {target} finds entities; it always reads windows")
        lines, _ = _read_lines(texts, file)
        for text, answer in zip(lines, predictor.predict(lines, aggregation=aggregation), strict=True):
            _echo_entities(text, [e.to_dict() for e in answer.entities], answer.truncated)
        return
    items, pairs = _with_pairs(*_read_lines(texts, file), text_pair, predictor.pairs)
    if predictor.pairs and pairs is None and items:  # named by the flag, not by the gRPC field (issue 29)
        raise BatonError(
            f"--text-pair: {target} is a sentence-pair model: give --text-pair once per text, or lines "
            "'text<TAB>pair' through --input or stdin"
        )
    if pairs is not None and not predictor.pairs:
        raise BatonError(f"--text-pair: {target} takes single texts, not pairs")
    if pairs is not None and long_text is LongText.CHUNK:
        raise BatonError(f"--long-text chunk: {target} is a sentence-pair model; a pair is never chunked")
    predictions = predictor.predict(items, top_k=top_k, pairs=pairs, **chunking)
    for i, (text, p) in enumerate(zip(items, predictions, strict=True)):
        _echo_row(text, None if pairs is None else pairs[i], p, top_k, p.labels)


def _predict_remote(
    server: str,
    token: str | None,
    tls: Any,
    lines: list[str],
    where: str,
    text_pair: list[str] | None,
    top_k: int | None,
    aggregation: str | None,
    model: str | None = None,
    chunking: dict[str, str | None] | None = None,
) -> None:
    from baton.serving.client import Client, ClientError

    try:
        with Client(server, token=token, tls=tls, model=model) as client:
            info = client.model_info()
            if info.task == Task.ENTITIES:
                if text_pair:
                    raise BatonError("--text-pair: the server's model finds entities in single texts")
                if chunking and any(chunking.values()):
                    raise BatonError("--long-text/--chunk-combine: the server's model finds entities in windows")
                for text, found in zip(lines, client.recognize(lines, aggregation), strict=True):
                    entities = [dict(zip(_ENTITY_KEYS, e, strict=True)) for e in found.entities]
                    _echo_entities(text, entities, found.truncated)
                return
            if aggregation is not None:
                raise BatonError("--aggregation: the server's model is a classifier, not an entity model")
            # Lines from a file or stdin are split at tabs only for a pair model: ask the server what it takes.
            pairs_model = not text_pair and where != "arguments" and "text_pair" in info.inputs
            multi_label = info.problem_type == "multi_label_classification"
            items, pairs = _with_pairs(lines, where, text_pair, pairs_model)
            chosen = chunking or {}
            results = client.classify(
                items,
                top_k=top_k,
                pairs=pairs,
                long_text=chosen.get("long_text"),
                chunk_combine=chosen.get("chunk_combine"),
            )
    except ClientError as exc:
        raise BatonError(f"--server {server}: {exc}") from exc
    for i, (text, r) in enumerate(zip(items, results, strict=True)):
        labels = list(r.labels) if multi_label else None
        _echo_row(text, None if pairs is None else pairs[i], r, top_k, labels)


def _echo_row(text: str, pair: str | None, answer: Any, top_k: int | None, labels: list[str] | None) -> None:
    """One JSON line for a classification `answer` (the Predictor's or the client's: the same fields)."""
    import json

    row: dict[str, Any] = {"text": text}
    if pair is not None:
        row["text_pair"] = pair
    if labels is not None:  # multi-label answers lead with their labels
        row["labels"] = labels
    row.update({"label": answer.label, "score": round(answer.score, 6), "truncated": answer.truncated})
    if answer.empty:
        row["empty"] = True
    if top_k:
        row["top_k"] = [{"label": name, "score": round(s, 6)} for name, s in answer.top_k]
    typer.echo(json.dumps(row, ensure_ascii=False))


_ENTITY_KEYS = ("label", "text", "start", "end", "score")


def _echo_entities(text: str, entities: list[dict[str, Any]], truncated: bool) -> None:
    import json

    row: dict[str, Any] = {"text": text, "entities": [{**e, "score": round(e["score"], 6)} for e in entities]}
    row["truncated"] = truncated
    typer.echo(json.dumps(row, ensure_ascii=False))


@app.command()
def evaluate(
    bundle: Annotated[str, typer.Argument(help="Bundle directory.")],
    data: Annotated[
        str,
        Opt(
            "--input", help="Labelled CSV/JSON/JSONL/parquet file; entity bundles: token/tag rows, CoNLL text or spans."
        ),
    ],
    variant: Annotated[list[str] | None, Opt(help="Variant(s) to score (default: each).")] = None,
    text_column: Annotated[str, Opt(help="Text column.")] = "text",
    text_pair_column: Annotated[str | None, Opt(help="Second text's column (sentence-pair models).")] = None,
    label_column: Annotated[str, Opt(help="Label column.")] = "label",
    output_dir: Annotated[
        Path | None, Opt("--output", "-o", help="Write metrics.json, report.md and plots here.")
    ] = None,
    aggregation: Annotated[
        str | None, Opt(help="Entity bundles: simple, first, max, average or none (default: the bundle's).")
    ] = None,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
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
    text_column: Annotated[str, Opt(help="Text column.")] = "text",
    text_pair_column: Annotated[str | None, Opt(help="Second text's column (sentence-pair models).")] = None,
    id_column: Annotated[str | None, Opt(help="A key column carried into the output.")] = None,
    keep_columns: Annotated[
        bool,
        Opt(
            "--keep-columns",
            help=f"Carry every input column into the output; the predictions are then named {PREFIX}label, "
            f"{PREFIX}score, ...",
        ),
    ] = False,
    scores: Annotated[bool, Opt("--scores", help="Classifiers: add every label's score.")] = False,
    aggregation: Annotated[
        str | None, Opt(help="Entity bundles: simple, first, max, average or none (default: the bundle's).")
    ] = None,
    long_text: LongTextOpt = None,
    chunk_combine: ChunkCombineOpt = None,
    engine: Annotated[str, Opt(help="embedded (one process) or ray (Ray Data; needs the ray extra).")] = "embedded",
    address: Annotated[str | None, Opt(help="--engine ray: a cluster address (auto, ray://host:10001).")] = None,
    actors: Annotated[int, Opt(help="--engine ray: scoring actors, each loading the bundle once.")] = 1,
    threads: Annotated[int | None, Opt(help="onnxruntime threads (per actor with ray; default: CPUs shared).")] = None,
    chunk_rows: Annotated[int, Opt(help="Rows read, sorted by length and scored at a time.")] = 4096,
    batch_size: Annotated[int, Opt(help="Texts per model call.")] = 16,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    variant: Annotated[str | None, Opt(help="fp32, int8 or fp16 (default: the best for the device).")] = None,
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
            long_text=None if long_text is None else long_text.value,
            chunk_combine=None if chunk_combine is None else chunk_combine.value,
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
