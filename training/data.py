"""Loading labelled splits from files or the Hub, validating them, and building the label mapping."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baton.errors import DataError
from baton.training.config import TrainConfig

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = [
    "MULTI_LABEL",
    "SINGLE_LABEL",
    "PreparedData",
    "TaskSpec",
    "check_headers",
    "load_labelled_file",
    "prepare_data",
]

logger = logging.getLogger(__name__)

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"

_BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"delimiter": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}


@dataclass(frozen=True)
class TaskSpec:
    """What the model predicts and from which columns."""

    problem_type: str
    labels: tuple[str, ...]
    text_column: str
    text_pair_column: str | None
    label_column: str

    @property
    def is_multi_label(self) -> bool:
        return self.problem_type == MULTI_LABEL

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}


@dataclass
class PreparedData:
    """Validated splits whose label column holds ids (single-label) or multi-hot float lists (multi-label)."""

    spec: TaskSpec
    train: Dataset
    validation: Dataset
    test: Dataset | None
    validation_source: str
    dropped: dict[str, int] = field(default_factory=dict)


def load_labelled_file(path_str: str, flag: str = "--data") -> Dataset:
    """Read one labelled CSV/TSV/JSON/JSONL/parquet file (used by training, export and evaluation)."""
    import datasets

    path = Path(path_str)
    if not path.is_file():
        raise DataError(f"{flag}: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in _BUILDERS:
        raise DataError(
            f"{flag}: unknown format '{suffix or path.name}' for {path} (use one of: {', '.join(sorted(_BUILDERS))})"
        )
    builder, kwargs = _BUILDERS[suffix]
    if path.stat().st_size == 0:
        raise DataError(f"{flag}: {path} is empty")
    if suffix in (".jsonl", ".csv", ".tsv"):
        _check_text_file(path, flag, jsonl=suffix == ".jsonl")
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except ModuleNotFoundError:
        raise  # a missing package, not a bad file: the CLI names the extra to install
    except Exception as exc:  # datasets raises many types for malformed input; translate them all here.
        first = str(exc).strip().splitlines()[:1] or [type(exc).__name__]
        raise DataError(f"{flag}: cannot read {path} as {builder}: {first[0][:300]}") from exc
    if len(ds) == 0:
        raise DataError(f"{flag}: {path} holds no rows")
    return ds


MAX_ROW_BYTES = 1 << 20  # one line of a data file; a longer one is refused before it is held in memory


def bounded_lines(path: Path, flag: str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of a text file, each read with at most `MAX_ROW_BYTES` held: one 200 MB line drove
    `baton train` past 15 GB (issue 29), even with --max-train-samples 64. A longer line is a DataError naming it."""
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_ROW_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_ROW_BYTES:
                raise DataError(
                    f"{flag}: {path} line {number} is longer than {MAX_ROW_BYTES // 2**20} MiB; a row must be shorter"
                )
            yield number, raw


def _header(path: Path, flag: str) -> list[str] | None:
    """The column names of a data file, read from its first line or schema only; None where that is not cheap."""
    import csv
    import json

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ModuleNotFoundError:
            return None
        try:
            return list(pq.read_schema(path).names)
        except Exception:  # not parquet: datasets' reader names the problem later
            return None
    if suffix not in (".jsonl", ".csv", ".tsv"):
        return None
    first = next((raw.decode("utf-8", "replace") for _, raw in bounded_lines(path, flag) if raw.strip()), None)
    if first is None:
        return None
    if suffix == ".jsonl":
        try:
            row = json.loads(first)
        except ValueError:
            return None
        return list(row) if isinstance(row, dict) else None
    return next(csv.reader([first], delimiter="\t" if suffix == ".tsv" else ","), None)


def check_headers(cfg: TrainConfig) -> None:
    """The named columns are in every data file's header: checked before torch and datasets load, so that a wrong
    column name fails at once. Files whose header is not cheap to read (.json) are checked when they are loaded."""
    wanted = [("--text-column", cfg.text_column), ("--label-column", cfg.label_column)]
    if cfg.text_pair_column:
        wanted.append(("--text-pair-column", cfg.text_pair_column))
    for flag, value in (("--train-file", cfg.train_file), ("--validation-file", cfg.validation_file)):
        if value is None or not Path(value).is_file():
            continue  # a missing file is named when it is loaded
        columns = _header(Path(value), flag)
        if columns is None:
            continue
        for option, column in wanted:
            if column not in columns:
                raise DataError(f"{flag} {value}: no column '{column}' ({option}); columns found: {', '.join(columns)}")


def _check_text_file(path: Path, flag: str, jsonl: bool) -> None:
    """UTF-8 throughout, and (JSONL) one JSON object per line: name the first bad line and column, as datasets
    reports neither. Checked before datasets reads the file, not after it fails: a failing datasets load prints its
    progress bar and error log on stderr, which would break the one-line error. The extra pass took 0.09 s on the
    largest file here (GoEmotions train, 5.4 MB)."""
    import json

    rows = 0
    for number, raw in bounded_lines(path, flag):
        rows += bool(raw.strip())
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{flag}: {path} line {number} is not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1}); save the file as UTF-8"
            ) from exc
        if not jsonl or not line.strip():
            continue
        try:
            row = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{flag}: {path} line {number}, column {exc.pos + 1}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{flag}: {path} line {number}: expected a JSON object, got {type(row).__name__}")
    if not jsonl and rows <= 1:  # datasets' own error for a header alone names its internals (issue 29)
        raise DataError(f"{flag}: {path} holds no rows, only a header")


def _hub_splits(cfg: TrainConfig) -> dict[str, Dataset]:
    import datasets

    assert cfg.dataset is not None
    try:
        loaded = datasets.load_dataset(cfg.dataset, cfg.dataset_config)
    except Exception as exc:
        raise DataError(
            f"--dataset: cannot load '{cfg.dataset}' ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). "
            "Offline, use --train-file with a local CSV/JSON/JSONL/parquet file."
        ) from exc
    if "train" not in loaded:
        raise DataError(f"--dataset: '{cfg.dataset}' has no train split (splits: {', '.join(loaded)})")
    return {name: loaded[name] for name in ("train", "validation", "test") if name in loaded}


def _check_columns(ds: Dataset, cfg: TrainConfig, where: str) -> None:
    wanted = [("--text-column", cfg.text_column), ("--label-column", cfg.label_column)]
    if cfg.text_pair_column:
        wanted.append(("--text-pair-column", cfg.text_pair_column))
    for flag, column in wanted:
        if column not in ds.column_names:
            raise DataError(f"{where}: no column '{column}' ({flag}); columns found: {', '.join(ds.column_names)}")


def _kind(feature: Any) -> str:
    """A column type as a user reads it: int64, string, list, struct, ..."""
    if isinstance(feature, dict):
        return "struct"
    if hasattr(feature, "dtype") and not hasattr(feature, "feature"):
        return str(feature.dtype)
    return "list" if hasattr(feature, "feature") else type(feature).__name__


def _check_types(ds: Dataset, cfg: TrainConfig, where: str) -> None:
    """Texts must be scalars (numbers are read as text, as from CSV); labels scalars, or lists of them for
    multi-label. A parquet struct or list where a text belongs was a traceback deep in the tokenizer (issue 29)."""
    from datasets import ClassLabel, Value

    def scalar(feature: Any) -> bool:
        return isinstance(feature, Value | ClassLabel)

    texts = [("--text-column", cfg.text_column)] + (
        [("--text-pair-column", cfg.text_pair_column)] if cfg.text_pair_column else []
    )
    for flag, column in texts:
        if not scalar(ds.features[column]):
            raise DataError(f"{where}: column '{column}' ({flag}) holds {_kind(ds.features[column])} values, not text")
    label = ds.features[cfg.label_column]
    if not (scalar(label) or scalar(getattr(label, "feature", None))):
        raise DataError(
            f"{where}: column '{cfg.label_column}' (--label-column) holds {_kind(label)} values; a label is a string "
            "or an integer, or a list of them for multi-label"
        )


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean(ds: Dataset, cfg: TrainConfig, where: str, dropped: dict[str, int]) -> Dataset:
    """Drop rows with an empty/whitespace-only text (or pair text) or a missing label; count them."""
    text_cols = [cfg.text_column] + ([cfg.text_pair_column] if cfg.text_pair_column else [])

    def keep(row: dict[str, Any]) -> bool:
        return not any(_is_blank(row[c]) for c in text_cols) and row[cfg.label_column] is not None

    before = len(ds)
    ds = ds.filter(keep, desc=f"checking {where}")
    if len(ds) < before:
        dropped[where] = before - len(ds)
        logger.warning("%s: dropped %d row(s) with an empty text or missing label", where, before - len(ds))
    if len(ds) == 0:
        raise DataError(f"{where}: no usable rows (all texts empty or labels missing)")
    # Texts read from CSV or parquet may be numbers: make them strings (`_check_types` let only scalars through).
    from datasets import Value

    for column in text_cols:
        if ds.features[column] != Value("string"):
            ds = ds.cast_column(column, Value("string"))
    return ds


def _label_names(values: Sequence[Any], multi: bool) -> list[str]:
    flat: list[Any] = [v for row in values for v in row] if multi else list(values)
    unique = set(flat)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in unique):
        return [str(v) for v in sorted(unique)]
    return sorted(str(v) for v in unique)


def _infer_spec(train: Dataset, cfg: TrainConfig) -> TaskSpec:
    values = train[cfg.label_column]
    multi = isinstance(values[0], list | tuple)
    if multi and not all(isinstance(v, list | tuple) for v in values):
        raise DataError(f"--label-column '{cfg.label_column}': mixes lists and single labels")
    labels = _label_names(values, multi)
    if len(labels) < 2:
        raise DataError(
            f"--label-column '{cfg.label_column}': the training split has a single class ({labels[0]!r}); "
            "classification needs at least two"
        )
    return TaskSpec(
        problem_type=MULTI_LABEL if multi else SINGLE_LABEL,
        labels=tuple(labels),
        text_column=cfg.text_column,
        text_pair_column=cfg.text_pair_column,
        label_column=cfg.label_column,
    )


def _drop_unseen(ds: Dataset, spec: TaskSpec, where: str, unknown: list[str], dropped: dict[str, int]) -> Dataset:
    """--drop-unseen-labels: single-label rows with a label train never saw go; multi-label rows lose those labels
    (a row left with no label stays: "none of these" is a multi-label answer). Counted in `dropped`."""
    column, known = spec.label_column, set(spec.label2id)
    if spec.is_multi_label:
        removed = sum(1 for row in ds[column] for v in row if str(v) not in known)
        ds = ds.map(lambda row: {column: [v for v in row[column] if str(v) in known]}, desc=f"unseen labels {where}")
    else:
        before = len(ds)
        ds = ds.filter(lambda row: str(row[column]) in known, desc=f"unseen labels {where}")
        removed = before - len(ds)
        if len(ds) == 0:
            raise DataError(f"{where}: no rows left once labels never seen in the training split are dropped")
    what = "label(s)" if spec.is_multi_label else "row(s)"
    dropped[f"{where}: unseen labels"] = removed
    logger.warning(
        "%s: dropped %d %s whose label train never saw (--drop-unseen-labels): %s", where, removed, what, unknown[:10]
    )
    return ds


def _encode_labels(
    ds: Dataset, spec: TaskSpec, where: str, drop_unseen: bool = False, dropped: dict[str, int] | None = None
) -> Dataset:
    label2id = spec.label2id
    values = ds[spec.label_column]
    seen = {str(v) for row in values for v in row} if spec.is_multi_label else {str(v) for v in values}
    unknown = sorted(seen - set(label2id))
    if unknown and drop_unseen:
        ds = _drop_unseen(ds, spec, where, unknown, dropped if dropped is not None else {})
    elif unknown:
        raise DataError(
            f"{where}: label(s) never seen in the training split: {', '.join(unknown[:10])}"
            f" (training labels: {', '.join(spec.labels)}); pass --drop-unseen-labels to drop them and count them"
        )
    column = spec.label_column
    if spec.is_multi_label:

        def to_multi_hot(row: dict[str, Any]) -> dict[str, Any]:
            hot = [0.0] * len(label2id)
            for v in row[column]:
                hot[label2id[str(v)]] = 1.0
            return {"labels": hot}

        return ds.map(to_multi_hot, desc=f"labels {where}")
    return ds.map(lambda row: {"labels": label2id[str(row[column])]}, desc=f"labels {where}")


def _split_validation(train: Dataset, cfg: TrainConfig, spec: TaskSpec) -> tuple[Dataset, Dataset, str]:
    import numpy as np
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(train))
    stratify = None if spec.is_multi_label else np.asarray(train["labels"])
    how = "stratified" if stratify is not None else "random"
    try:
        tr_idx, va_idx = train_test_split(
            indices, test_size=cfg.validation_fraction, random_state=cfg.seed, stratify=stratify
        )
    except ValueError:
        logger.warning("too few rows per class for a stratified split: splitting at random")
        how = "random"
        tr_idx, va_idx = train_test_split(indices, test_size=cfg.validation_fraction, random_state=cfg.seed)
    source = f"{how} {cfg.validation_fraction:.0%} split of the training data (seed {cfg.seed})"
    return train.select(sorted(tr_idx)), train.select(sorted(va_idx)), source


def prepare_data(cfg: TrainConfig) -> PreparedData:
    """Load, validate and label-encode the train/validation/test splits named by `cfg`."""
    raw: dict[str, Dataset] = {}
    where: dict[str, str] = {}
    if cfg.train_file is not None:
        for split, path, flag in (
            ("train", cfg.train_file, "--train-file"),
            ("validation", cfg.validation_file, "--validation-file"),
            ("test", cfg.test_file, "--test-file"),
        ):
            if path is not None:
                raw[split] = load_labelled_file(path, flag)
                where[split] = f"{flag} {path}"
    else:
        raw = _hub_splits(cfg)
        where = {split: f"--dataset {cfg.dataset} [{split}]" for split in raw}

    dropped: dict[str, int] = {}
    for split in list(raw):
        _check_columns(raw[split], cfg, where[split])
        _check_types(raw[split], cfg, where[split])
        raw[split] = _clean(raw[split], cfg, where[split], dropped)

    spec = _infer_spec(raw["train"], cfg)
    encoded = {
        split: _encode_labels(ds, spec, where[split], cfg.drop_unseen_labels and split != "train", dropped)
        for split, ds in raw.items()
    }

    train = encoded["train"]
    if "validation" in encoded:
        validation, source = encoded["validation"], where["validation"]
    else:
        train, validation, source = _split_validation(train, cfg, spec)
    if cfg.max_train_samples is not None and cfg.max_train_samples < len(train):
        train = train.shuffle(seed=cfg.seed).select(range(cfg.max_train_samples))
    logger.info(
        "task %s, %d labels; %d train / %d validation (%s)%s",
        spec.problem_type,
        len(spec.labels),
        len(train),
        len(validation),
        source,
        f" / {len(encoded['test'])} test" if "test" in encoded else "",
    )
    return PreparedData(spec, train, validation, encoded.get("test"), source, dropped)
