"""Entity-recognition data: three file layouts read into one list of `Sentence`s (words + IOB2 tags).

  (a) rows with a word list and a tag list (`--tokens-column tokens`, `--tags-column ner_tags`) in JSONL, JSON or
      parquet; tags as IOB2 strings, or ints with `--tag-names` (the layout of CoNLL-2003 on the Hub);
  (b) the CoNLL-2003 text format (`.conll`, `.iob`, `.txt`): a token per line, the tag in the last column, a blank
      line between sentences, `-DOCSTART-` lines skipped;
  (c) JSONL rows with `text` and `entities: [{start, end, label}]` character spans (what annotation tools export).
      The text is cut into words at spaces, at punctuation and at every span boundary, and tagged B-/I- from the
      spans.

Every problem names the file and line. Invalid IOB transitions (an I-X that follows neither B-X nor I-X) are
counted and reported, not fatal: they are read as conlleval reads them (the I-X starts an entity). Empty sentences
are dropped and counted.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton.errors import DataError
from baton.training.data import bounded_lines

__all__ = [
    "CONLL_SUFFIXES",
    "Sentence",
    "TokenFile",
    "detect_token_layout",
    "iob_problems",
    "joined_text",
    "read_token_file",
    "tag_set",
    "words_with_offsets",
]

logger = logging.getLogger(__name__)

CONLL_SUFFIXES = (".conll", ".iob", ".txt")
_TAG = re.compile(r"(?:[BI]-\S{1,64}|O)")
# A word: a run of letters/digits (with inner apostrophes, hyphens, dots), or one other non-space character.
_WORD = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]", re.UNICODE)
_MAX_WORDS = 10_000  # per sentence; beyond this a row is refused (windows handle long ones)


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    line: int  # where it starts in its file (1-based), for error messages


@dataclass
class TokenFile:
    sentences: list[Sentence]
    path: str
    layout: str  # "columns", "conll" or "spans"
    dropped_empty: int = 0
    invalid_transitions: int = 0
    examples: list[str] = field(default_factory=list)  # the first invalid transitions, "line N: O I-PER"


def detect_token_layout(path: str, tokens_column: str, tags_column: str) -> str | None:
    """'conll', 'spans' or 'columns' when `path` looks like entity data; None when it looks like classification."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return "conll"
    if suffix not in (".jsonl", ".json"):
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(p).names if p.is_file() else []
            return "columns" if tokens_column in names and tags_column in names else None
        return None
    try:
        with p.open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
        row = json.loads(first) if suffix == ".jsonl" else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(row, dict):
        return None
    if tokens_column in row and tags_column in row:
        return "columns"
    if "text" in row and "entities" in row:
        return "spans"
    return None


def words_with_offsets(text: str, cuts: Sequence[int] = ()) -> list[tuple[str, int, int]]:
    """Words of `text` with their character offsets; a word never crosses a position in `cuts`."""
    bounds = sorted(set(cuts))
    out: list[tuple[str, int, int]] = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        inner = [c for c in bounds if start < c < end]
        for a, b in zip([start, *inner], [*inner, end], strict=True):
            out.append((text[a:b], a, b))
    return out


def joined_text(words: Sequence[str], tags: Sequence[str]) -> tuple[str, set[tuple[str, int, int]]]:
    """Words joined by single spaces, and the (type, start, end) character spans of their entities in that text."""
    from baton.serving.iob import iob_spans

    starts, text = [], ""
    for word in words:
        starts.append(len(text) + (1 if text else 0))
        text = f"{text} {word}" if text else word
    spans = {(kind, starts[a], starts[b - 1] + len(words[b - 1])) for kind, a, b in iob_spans(list(tags))}
    return text, spans


def iob_problems(tags: Sequence[str]) -> list[int]:
    """Positions of I-X tags that follow neither B-X nor I-X."""
    bad = []
    previous = "O"
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            bad.append(i)
        previous = tag
    return bad


def tag_set(sentences: Sequence[Sentence]) -> list[str]:
    """The tag list a model predicts: 'O' first, then B-/I- per entity type (both, always), types sorted."""
    types = sorted({t[2:] for s in sentences for t in s.tags if t != "O"})
    return ["O", *[f"{p}-{t}" for t in types for p in ("B", "I")]]


def _check_tag(tag: Any, where: str) -> str:
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise DataError(f"{where}: tag {str(tag)[:40]!r} is not IOB2 (O, B-TYPE or I-TYPE)")
    return tag


def _jsonl_rows(path: Path, flag: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in bounded_lines(path, flag):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{flag}: {path} line {number} is not UTF-8 (column {exc.start + 1})") from exc
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            where = f"{flag}: {path} line {number}, column {exc.pos + 1}"
            raise DataError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{flag}: {path} line {number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def _column_rows(path: Path, flag: str) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_rows(path, flag)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{flag}: cannot read {path} as JSON ({exc})") from exc
        rows = data if isinstance(data, list) else data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise DataError(f"{flag}: {path} must hold a list of rows (or {{'data': [...]}})")
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise DataError(f"{flag}: {path} row {i}: expected an object, got {type(row).__name__}")
            yield i, row
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(f"{flag}: cannot read {path} as parquet ({str(exc)[:200]})") from exc
        for i, row in enumerate(table.to_pylist(), start=1):
            yield i, row


def _from_columns(
    path: Path, flag: str, tokens_column: str, tags_column: str, tag_names: Sequence[str] | None
) -> Iterator[tuple[int, list[str], list[str]]]:
    for number, row in _column_rows(path, flag):
        where = f"{flag}: {path} line {number}"
        for column, option in ((tokens_column, "--tokens-column"), (tags_column, "--tags-column")):
            if column not in row:
                raise DataError(f"{where}: no column '{column}' ({option}); columns found: {', '.join(row)}")
        words, tags = row[tokens_column], row[tags_column]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DataError(f"{where}: '{tokens_column}' must be a list of strings")
        if not isinstance(tags, list):
            raise DataError(f"{where}: '{tags_column}' must be a list of tags")
        if any(isinstance(t, int) and not isinstance(t, bool) for t in tags):
            if not tag_names:
                raise DataError(f"{where}: tags are ints; pass --tag-names with the tag of each id, in id order")
            if not all(isinstance(t, int) and 0 <= t < len(tag_names) for t in tags):
                raise DataError(f"{where}: tag ids must be in [0, {len(tag_names)}) (the ids of --tag-names)")
            tags = [tag_names[t] for t in tags]
        yield number, words, tags


def _from_conll(path: Path, flag: str) -> Iterator[tuple[int, list[str], list[str]]]:
    words: list[str] = []
    tags: list[str] = []
    start = 1
    for number, raw in bounded_lines(path, flag):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise DataError(f"{flag}: {path} line {number} is not UTF-8 (column {exc.start + 1})") from exc
        if not line.strip():
            if words:
                yield start, words, tags
            words, tags = [], []
            start = number + 1
            continue
        columns = line.split()
        if columns[0] == "-DOCSTART-":
            continue
        if len(columns) < 2:
            raise DataError(f"{flag}: {path} line {number}: expected 'token ... tag' (a tag in the last column)")
        if not words:
            start = number
        words.append(columns[0])
        tags.append(columns[-1])
    if words:
        yield start, words, tags


def _from_spans(path: Path, flag: str) -> Iterator[tuple[int, list[str], list[str]]]:
    for number, row in _jsonl_rows(path, flag):
        where = f"{flag}: {path} line {number}"
        text, spans = row.get("text"), row.get("entities")
        if not isinstance(text, str) or not isinstance(spans, list):
            raise DataError(f"{where}: expected 'text' (a string) and 'entities' (a list of {{start, end, label}})")
        checked: list[tuple[int, int, str]] = []
        for k, span in enumerate(spans):
            ok = isinstance(span, dict) and all(isinstance(span.get(key), int) for key in ("start", "end"))
            label = span.get("label") if isinstance(span, dict) else None
            if not ok or not isinstance(label, str) or not re.fullmatch(r"\S{1,64}", label):
                raise DataError(f"{where}: entities[{k}] must be {{start: int, end: int, label: str}}")
            start, end = int(span["start"]), int(span["end"])
            if not 0 <= start < end <= len(text):
                raise DataError(f"{where}: entities[{k}] [{start}, {end}) is not inside the text ({len(text)} chars)")
            if not text[start:end].strip():
                raise DataError(f"{where}: entities[{k}] [{start}, {end}) covers only spaces")
            checked.append((start, end, label))
        checked.sort()
        for (_, e1, _), (s2, _, _) in itertools.pairwise(checked):
            if s2 < e1:
                raise DataError(f"{where}: two entities overlap at character {s2}")
        words = words_with_offsets(text, [c for s, e, _ in checked for c in (s, e)])
        tags = []
        previous: int | None = None  # the span the previous word lies in
        k = 0
        for _, ws, we in words:
            while k < len(checked) and checked[k][1] <= ws:
                k += 1
            inside = k < len(checked) and checked[k][0] <= ws and we <= checked[k][1]
            tags.append(f"{'I' if previous == k else 'B'}-{checked[k][2]}" if inside else "O")
            previous = k if inside else None
        yield number, [w for w, _, _ in words], tags


def read_token_file(
    path_str: str,
    flag: str,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
    tag_names: Sequence[str] | None = None,
) -> TokenFile:
    """Read one entity file of any of the three layouts; errors name the flag, file and line."""
    path = Path(path_str)
    if not path.is_file():
        raise DataError(f"{flag}: file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{flag}: {path} is empty")
    layout = detect_token_layout(path_str, tokens_column, tags_column)
    if layout is None:
        raise DataError(
            f"{flag}: {path} is not entity data: expected CoNLL text (.conll/.iob/.txt), rows with "
            f"'{tokens_column}' and '{tags_column}' (--tokens-column/--tags-column), or 'text' + 'entities' spans"
        )
    rows = (
        _from_conll(path, flag)
        if layout == "conll"
        else _from_spans(path, flag)
        if layout == "spans"
        else _from_columns(path, flag, tokens_column, tags_column, tag_names)
    )
    out = TokenFile([], str(path), layout)
    for number, words, tags in rows:
        where = f"{flag}: {path} line {number}"
        if len(words) != len(tags):
            raise DataError(f"{where}: {len(words)} tokens but {len(tags)} tags")
        if len(words) > _MAX_WORDS:
            raise DataError(f"{where}: {len(words)} tokens in one sentence (at most {_MAX_WORDS})")
        if not words or all(not w.strip() for w in words):
            out.dropped_empty += 1
            continue
        tags = [_check_tag(t, where) for t in tags]
        bad = iob_problems(tags)
        if bad:
            out.invalid_transitions += len(bad)
            if len(out.examples) < 3:
                i = bad[0]
                out.examples.append(f"line {number}: {tags[i - 1] if i else '(start)'} → {tags[i]}")
        out.sentences.append(Sentence(tuple(words), tuple(tags), number))
    if not out.sentences:
        raise DataError(f"{flag}: {path} holds no sentences")
    if out.dropped_empty:
        logger.warning("%s: %s: dropped %d empty sentence(s)", flag, path, out.dropped_empty)
    if out.invalid_transitions:
        logger.warning(
            "%s: %s: %d invalid IOB transition(s), read as the start of an entity (e.g. %s)",
            flag,
            path,
            out.invalid_transitions,
            "; ".join(out.examples),
        )
    return out
