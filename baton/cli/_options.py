"""What several commands share: option definitions, the one way a default is shown, the old flag names kept as
hidden aliases for one release, and the readers of texts, pairs and TLS files."""

from __future__ import annotations

import dataclasses
import enum
import sys
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

from baton.errors import BatonError
from baton.serving.long_text import ChunkCombine, LongText

__all__ = ["ALIASES", "CONFIGS", "Opt", "apply_dialect", "rename_aliases"]

# The config class each command's options become (its field defaults are the defaults the help shows).
CONFIGS: dict[str, tuple[str, ...]] = {
    "train": ("baton.training.config:TrainConfig",),
    "tune": ("baton.training.config:TrainConfig", "baton.training.tune:TuneConfig"),
    "learning-curve": ("baton.training.config:TrainConfig", "baton.training.curve:CurveConfig"),
    "adapt": ("baton.training.adapt:AdaptConfig",),
    "distill": ("baton.training.distill:DistillConfig",),
    "export": ("baton.export.config:ExportConfig",),
    "serve": ("baton.serving.config:ServeConfig",),
}

# The first release's flag names, accepted (with a warning) for one more release: one word for an output
# (--output), an input (--input) and a server address (--server) in every command.
ALIASES: dict[tuple[str, ...], dict[str, str]] = {
    ("train",): {"--output-dir": "--output"},
    ("adapt",): {"--output-dir": "--output"},
    ("distill",): {"--output-dir": "--output"},
    ("tune",): {"--output-dir": "--output"},
    ("learning-curve",): {"--output-dir": "--output"},
    ("evaluate",): {"--data": "--input", "--output-dir": "--output"},
    ("predict",): {"--file": "--input"},
    ("health",): {"--target": "--server"},
    ("bench", "inprocess"): {"--data": "--input"},
    ("bench", "grpc"): {"--data": "--input", "--target": "--server"},
    ("bench", "serve"): {"--data": "--input"},
}


def rename_aliases(args: list[str]) -> tuple[list[str], list[str]]:
    """`args` with the old flag names of its command replaced by the new ones, and a warning for each."""
    words = [a for a in args if not a.startswith("-")][:2]
    renames = ALIASES.get(tuple(words[:2]), ALIASES.get(tuple(words[:1]), {}))
    out: list[str] = []
    warnings: list[str] = []
    for arg in args:
        if arg == "--":
            out += args[len(out) :]
            break
        old, eq, value = arg.partition("=")
        if old in renames:
            warnings.append(f"warning: {old} is now {renames[old]}; the old name goes in the next release")
            arg = renames[old] + eq + value
        out.append(arg)
    return out, warnings


def _shown(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _config_defaults(command: str) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for ref in CONFIGS.get(command, ()):
        module, name = ref.split(":")
        for f in dataclasses.fields(getattr(import_module(module), name)):
            if f.default is not dataclasses.MISSING and f.default is not None:
                defaults.setdefault(f.name, f.default)
    return defaults


def apply_dialect(group: Any, only: str | None = None) -> Any:
    """Give every option of `group`'s commands (or of the command `only`, e.g. "bench grpc") one help dialect: a
    flag shows no type; a value ends its help with "(default: X)", X read from the command's default or, where
    that is None (a YAML --config may still set it), from its config class (CONFIGS); typer's "[default: X]" is
    off. Returns `group`."""
    # typer carries its own copy of click: its commands and options are recognised by shape, not class
    stack: list[tuple[str, Any]] = list(getattr(group, "commands", {}).items())
    while stack:
        path, command = stack.pop()
        if hasattr(command, "commands"):
            stack += [(f"{path} {name}", sub) for name, sub in command.commands.items()]
            continue
        if only is not None and path != only and not path.startswith(only + " "):
            continue
        defaults = _config_defaults(path)
        for param in command.params:
            if getattr(param, "param_type_name", "") != "option":
                continue
            param.show_default = False
            if param.is_flag or param.name == "help":
                param.metavar = ""
                continue
            help_text = param.help or ""
            default = param.default if param.default not in (None, (), []) else defaults.get(param.name or "")
            if "(default" not in help_text and default is not None:
                param.help = f"{help_text.rstrip()} (default: {_shown(default)})".strip()
    return group


Opt = typer.Option

_AUTO = "auto, from the training set's size:"

_MODEL = Opt(help="Base model: 'minilm' (offline default), 'mpnet' (`baton models`), a local dir, or a Hub id.")

_TASK = Opt(help="text-classification, token-classification, or auto: detected from the data.")

_TOKENS = Opt(help="Entity data: the word-list column.")

_TAGS = Opt(help="Entity data: the IOB2 tag-list column.")

_REPORT_TO = Opt(
    help="Also log the run's curves to tensorboard (RUN/logs) or mlflow (default: none).", show_default=False
)

_TAG_NAMES = Opt(help="Entity data with int tags: the tag of each id, comma-separated, in id order.")


# The data and model options `train`, `tune` and `learning-curve` share, declared once.
ModelOpt = Annotated[str | None, _MODEL]
DatasetOpt = Annotated[str | None, Opt(help="A `datasets` Hub name instead of files (online only).")]
DatasetConfigOpt = Annotated[str | None, Opt(help="Config name of --dataset.")]
TextColumnOpt = Annotated[str | None, Opt(help="Text column.")]
TextPairColumnOpt = Annotated[str | None, Opt(help="Second text column for sentence-pair tasks.")]
LabelColumnOpt = Annotated[str | None, Opt(help="Label column; a column of lists means multi-label.")]
TaskOpt = Annotated[str | None, _TASK]
TokensColumnOpt = Annotated[str | None, _TOKENS]
TagsColumnOpt = Annotated[str | None, _TAGS]
TagNamesOpt = Annotated[str | None, _TAG_NAMES]
LongTextOpt = Annotated[
    LongText | None,
    Opt(help="Classifiers, texts past the window: truncate, or chunk in windows (default: the bundle's)."),
]
ChunkCombineOpt = Annotated[
    ChunkCombine | None, Opt(help="How a chunked text's windows combine: mean or max (default: the bundle's).")
]
MaxLengthOpt = Annotated[int | None, Opt(help="Max tokens per example.")]
ReportToOpt = Annotated[str | None, _REPORT_TO]


def _read_lines(texts: list[str] | None, file: Path | None) -> tuple[list[str], str]:
    """The texts given, else the lines of --file or stdin; returns (lines, where they came from)."""
    from baton.errors import DataError

    if texts and texts != ["-"]:
        return texts, "arguments"
    if file is not None:
        if not file.is_file():
            raise DataError(f"--input: file not found: {file}")
        raw, where = file.read_bytes(), f"--input {file}"
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


def _ints(value: str, flag: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError as exc:
        raise BatonError(f"{flag}: expected comma-separated integers (got {value!r})") from exc
    if not out or min(out) < 1:
        raise BatonError(f"{flag}: expected positive integers (got {value!r})")
    return out
