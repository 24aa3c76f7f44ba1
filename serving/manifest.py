"""The bundle manifest (`bundle.json`), parsed into frozen, validated dataclasses.

The manifest is the single source of truth for what a model takes and returns: its task, labels, decision
threshold, the text inputs it was trained on (`inputs`: `["text"]` or `["text", "text_pair"]`), the graph's input
names, the tokenizer settings and every file with its checksum. Export writes it; the runtime, the server and the
parity gates read it through `Manifest.parse`, and nothing re-derives it.

Everything in it is controlled by whoever wrote the bundle, so every field is type-checked and bounded here, before
it costs memory or time, and every file name must be a plain name inside the bundle (no folders, no `..`, not
absolute, not hidden). A bad manifest is one `BundleError` naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baton.errors import BundleError, InputError
from baton.serving.long_text import LongTextSpec
from baton.task import Task

__all__ = [
    "AGGREGATION_CHOICES",
    "INPUTS_PAIR",
    "INPUTS_TEXT",
    "MANIFEST",
    "MAX_CARD_BYTES",
    "MAX_MANIFEST_BYTES",
    "SCHEMA_VERSION",
    "FileEntry",
    "Manifest",
    "TokenizerSpec",
]

SCHEMA_VERSION = 2
MANIFEST = "bundle.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the manifest is read whole: refuse anything larger before reading it
INPUTS_TEXT = ("text",)
# Entity models: how sub-token tags become entities (serving/tasks/token_classification.py says what each does).
AGGREGATION_CHOICES = ("simple", "first", "max", "average", "none")
INPUTS_PAIR = ("text", "text_pair")

_VARIANTS = ("fp32", "fp16", "int8")
_PROVIDERS = ("cpu", "cuda")
_TASKS = tuple(t.value for t in Task)
_PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "token_classification")
_SCHEMES = ("IOB2",)
_TAG = re.compile(r"O|[BI]-\S{1,64}")
_GRAPH_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_MAX_LABELS = 10_000
_MAX_LABEL_CHARS = 256
_MAX_LENGTH = 8192
_MAX_FILES = 16
MAX_CARD_BYTES = 256 * 1024  # the model card (README.md), which a server sends to whoever asks
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _fail(key: str, why: str) -> BundleError:
    return BundleError(f"{MANIFEST}: '{key}' {why}")


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in data:
        raise _fail(name, "is missing")
    value = data[key]
    # bool is an int in Python; a JSON true is never a valid count or length here
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise _fail(name, f"must be {' or '.join(k.__name__ for k in kinds)} (got {type(value).__name__})")
    return value


def _int(data: Mapping[str, Any], key: str, lo: int, hi: int, where: str = "") -> int:
    value = _get(data, key, int, where)
    if not lo <= value <= hi:
        raise _fail(f"{where}{key}", f"must be in [{lo}, {hi}] (got {value})")
    return int(value)


def _choice(data: Mapping[str, Any], key: str, choices: tuple[str, ...], where: str = "") -> str:
    value = _get(data, key, str, where)
    if value not in choices:
        raise _fail(f"{where}{key}", f"must be one of {', '.join(choices)} (got {value[:64]!r})")
    return str(value)


def _file_name(value: Any, key: str) -> str:
    """A plain file name inside the bundle: no separators, no `..`, not hidden, not absolute, bounded."""
    if not isinstance(value, str) or not _FILE_NAME.fullmatch(value) or value in (".", ".."):
        raise _fail(key, f"must be a plain file name inside the bundle (got {str(value)[:80]!r})")
    return value


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    name: str
    sha256: str
    bytes: int
    variant: str | None = None
    provider: str | None = None

    @classmethod
    def parse(cls, name: Any, entry: Any) -> FileEntry:
        name = _file_name(name, "files")
        where = f"files.{name}."
        if not isinstance(entry, Mapping):
            raise _fail(f"files.{name}", f"must be an object (got {type(entry).__name__})")
        sha = _get(entry, "sha256", str, where)
        if not _SHA256.fullmatch(sha):
            raise _fail(f"{where}sha256", "must be 64 lowercase hex digits")
        size = _int(entry, "bytes", 0, 1 << 40, where)
        variant = _choice(entry, "variant", _VARIANTS, where) if "variant" in entry else None
        provider = _choice(entry, "provider", _PROVIDERS, where) if "provider" in entry else None
        if variant is not None and provider is None:
            raise _fail(f"{where}provider", "is missing (a model file names its provider)")
        return cls(name=name, sha256=sha, bytes=size, variant=variant, provider=provider)


@dataclass(frozen=True, kw_only=True)
class TokenizerSpec:
    file: str
    max_length: int
    truncation_side: str
    pad_id: int
    pad_token: str
    lowercase: bool

    @classmethod
    def parse(cls, data: Any) -> TokenizerSpec:
        if not isinstance(data, Mapping):
            raise _fail("tokenizer", f"must be an object (got {type(data).__name__})")
        w = "tokenizer."
        return cls(
            file=_file_name(_get(data, "file", str, w), "tokenizer.file"),
            max_length=_int(data, "max_length", 1, _MAX_LENGTH, w),
            truncation_side=_choice(data, "truncation_side", ("right", "left"), w),
            pad_id=_int(data, "pad_id", 0, 1 << 31, w),
            pad_token=str(_get(data, "pad_token", str, w))[:64],
            lowercase=bool(_get(data, "lowercase", bool, w)),
        )


def _name(data: Mapping[str, Any]) -> str:
    """The bundle's name, which goes into logs, metrics and answers: printable, on one line, 256 characters at most
    (a name with a newline and ANSI escapes went raw into log lines, issue 29)."""
    name = str(_get(data, "name", str))
    if not name or len(name) > 256 or not name.isprintable():
        raise _fail("name", "must be 1 to 256 printable characters on one line")
    return name


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A validated manifest. `raw` keeps the whole document for reporting (parity figures, versions)."""

    name: str
    task: Task
    problem_type: str
    labels: tuple[str, ...]
    threshold: float
    max_length: int
    inputs: tuple[str, ...]
    input_names: tuple[str, ...]
    tokenizer: TokenizerSpec
    files: Mapping[str, FileEntry]
    base_model: str
    raw: Mapping[str, Any]
    # token-classification only: the tag scheme, the default aggregation, the overlap of long-text windows
    scheme: str | None = None
    aggregation: str = "simple"
    stride: int = 0
    card: str | None = None  # the model card's file (Markdown), listed in `files` with its checksum
    long_text: LongTextSpec = field(default_factory=LongTextSpec)  # classification: truncate or chunk past the window

    @property
    def multi_label(self) -> bool:
        return self.problem_type == "multi_label_classification"

    @property
    def pairs(self) -> bool:
        """Whether the model was trained on sentence pairs (every request must then carry a pair)."""
        return self.inputs == INPUTS_PAIR

    def check_inputs(self, texts: int, pairs: int | None) -> None:
        """Refuse `texts` texts with `pairs` second texts (None: none given) unless they match the declared inputs:
        a pair model needs one pair per text, a single-text model takes none (InputError)."""
        if self.pairs and pairs is None:
            raise InputError("this model was trained on text pairs: send text_pairs, one per text")
        if not self.pairs and pairs is not None:
            raise InputError("this model takes single texts: send no text_pairs")
        if pairs is not None and pairs != texts:
            raise InputError(f"{texts} texts but {pairs} text_pairs: send one per text")

    @property
    def models(self) -> dict[str, FileEntry]:
        """variant → file entry."""
        return {e.variant: e for e in self.files.values() if e.variant is not None}

    @classmethod
    def parse(cls, data: Any) -> Manifest:
        if not isinstance(data, Mapping):
            raise BundleError(f"{MANIFEST}: must hold a JSON object (got {type(data).__name__})")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{MANIFEST}: schema_version {repr(version)[:20]} is not supported by this baton "
                f"(it reads {SCHEMA_VERSION}); export the run again"
            )
        labels = _get(data, "labels", list)
        if not 1 <= len(labels) <= _MAX_LABELS:
            raise _fail("labels", f"must hold 1 to {_MAX_LABELS} labels (got {len(labels)})")
        for label in labels:
            if not isinstance(label, str) or not 0 < len(label) <= _MAX_LABEL_CHARS:
                raise _fail("labels", f"must be non-empty strings of at most {_MAX_LABEL_CHARS} characters")
        if len(set(labels)) != len(labels):
            raise _fail("labels", "must be distinct")
        threshold = _get(data, "threshold", (int, float))
        if not 0.0 < float(threshold) < 1.0:
            raise _fail("threshold", f"must be in (0, 1) (got {threshold})")
        inputs = tuple(_get(data, "inputs", list))
        if inputs not in (INPUTS_TEXT, INPUTS_PAIR):
            raise _fail("inputs", f"must be {list(INPUTS_TEXT)} or {list(INPUTS_PAIR)} (got {list(inputs)[:4]})")
        input_names = tuple(_get(data, "input_names", list))
        if "input_ids" not in input_names or not set(input_names) <= set(_GRAPH_INPUTS):
            raise _fail("input_names", f"must include input_ids and only {', '.join(_GRAPH_INPUTS)}")
        if len(set(input_names)) != len(input_names):
            raise _fail("input_names", "must be distinct")
        raw_files = _get(data, "files", dict)
        if len(raw_files) > _MAX_FILES:
            raise _fail("files", f"lists {len(raw_files)} files (at most {_MAX_FILES})")
        files = {name: FileEntry.parse(name, entry) for name, entry in raw_files.items()}
        tokenizer = TokenizerSpec.parse(data.get("tokenizer"))
        max_length = _int(data, "max_length", 1, _MAX_LENGTH)
        if tokenizer.file not in files:
            raise _fail("tokenizer.file", f"names {tokenizer.file}, which 'files' does not list (no checksum)")
        if files[tokenizer.file].variant is not None:
            raise _fail("tokenizer.file", "names a model file")
        if tokenizer.max_length != max_length:
            raise _fail("tokenizer.max_length", f"({tokenizer.max_length}) differs from max_length ({max_length})")
        variants = [e.variant for e in files.values() if e.variant is not None]
        if not variants:
            raise _fail("files", "lists no model file")
        if len(set(variants)) != len(variants):
            raise _fail("files", "lists two model files of one variant")
        card = data.get("card")
        if card is not None:
            card = _file_name(card, "card")
            if card not in files or files[card].variant is not None:
                raise _fail("card", f"names {card}, which 'files' does not list as a plain file (no checksum)")
            if files[card].bytes > MAX_CARD_BYTES:
                raise _fail("card", f"{card} has {files[card].bytes} bytes (at most {MAX_CARD_BYTES})")
        base = data.get("base_model")
        task = Task(_choice(data, "task", _TASKS))
        problem_type = _choice(data, "problem_type", _PROBLEM_TYPES)
        token_task: dict[str, Any] = {}
        if (task is Task.ENTITIES) != (problem_type == "token_classification"):
            raise _fail("problem_type", f"{problem_type} does not fit task {task}")
        if task is Task.ENTITIES:
            if inputs != INPUTS_TEXT:
                raise _fail("inputs", "must be ['text'] for an entity model")
            if "O" not in labels or not all(_TAG.fullmatch(label) for label in labels):
                raise _fail("labels", "of an entity model must be IOB2 tags (O, B-TYPE, I-TYPE), O among them")
            token_task = {
                "scheme": _choice(data, "scheme", _SCHEMES),
                "aggregation": _choice(data, "aggregation", AGGREGATION_CHOICES),
                "stride": _int(data, "stride", 0, max_length - 1),
            }
        else:
            token_task = {"long_text": LongTextSpec.parse(data.get("long_text"), max_length)}
        return cls(
            name=_name(data),
            task=task,
            problem_type=problem_type,
            labels=tuple(labels),
            threshold=float(threshold),
            max_length=max_length,
            inputs=inputs,
            input_names=input_names,
            tokenizer=tokenizer,
            files=files,
            base_model=str(base)[:256] if isinstance(base, str) else "",
            raw=data,
            card=card,
            **token_task,
        )
