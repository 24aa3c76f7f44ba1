"""Bounded request decoding: count a message's elements on the wire before protobuf decodes it.

A 4 MB protobuf message can hold two million empty strings; decoding it whole takes most of a second on the event
loop and gigabytes of Python objects, before any limit is checked. These deserializers walk the wire format
first, skipping payloads by their length prefix and giving up as soon as a count passes its bound, so a hostile
message costs at most a few hundred steps. A message that is not valid protobuf becomes a `Malformed` value that
the handler answers with INVALID_ARGUMENT (gRPC would otherwise answer UNKNOWN and log a traceback per call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

__all__ = ["Malformed", "TooManyElements", "bounded", "count_fields", "guarded_handler"]

_LEN = 2  # wire type of strings, bytes and nested messages
_MAX_VARINT_BYTES = 10


@dataclass(frozen=True)
class Malformed:
    """What a deserializer returns for bytes it refuses; the handler answers INVALID_ARGUMENT with `reason`."""

    reason: str


class TooManyElements(ValueError):
    """A message holds more fields than its bound."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for i in range(pos, min(pos + _MAX_VARINT_BYTES, len(data))):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i + 1
        shift += 7
    raise DecodeError("truncated or overlong varint")


def _fields(data: bytes, limit: int) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, start, end) of each top-level field; TooManyElements past `limit` fields."""
    out: list[tuple[int, int, int, int]] = []
    pos, size = 0, len(data)
    while pos < size:
        if len(out) >= limit:
            raise TooManyElements(f"more than {limit} elements")
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        start = pos
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == _LEN:
            length, start = _varint(data, pos)
            pos = start + length
        else:  # groups (3, 4) are not used by proto3 messages
            raise DecodeError(f"unsupported wire type {wire}")
        if pos > size:
            raise DecodeError("field runs past the end of the message")
        out.append((number, wire, start, pos))
    return out


def count_fields(data: bytes, limit: int, nested: dict[int, tuple[int, dict[int, Any]]] | None = None) -> None:
    """Check `data` holds at most `limit` fields, and each nested message (by field number: (limit, nested))
    its own bound, recursively. Raises TooManyElements or DecodeError."""
    for number, wire, start, end in _fields(data, limit):
        if nested and number in nested and wire == _LEN:
            inner_limit, inner_nested = nested[number]
            count_fields(data[start:end], inner_limit, inner_nested)


def bounded(parse: Callable[[bytes], Any], check: Callable[[bytes], None] | None = None) -> Callable[[bytes], Any]:
    """A request deserializer: `check` the wire counts, then `parse`; refused bytes become `Malformed`."""

    def deserialize(data: bytes) -> Any:
        try:
            if check is not None:
                check(data)
            return parse(data)
        except TooManyElements as exc:
            return Malformed(f"request has too many elements ({exc}); split it into smaller requests")
        except (DecodeError, ValueError, RuntimeError) as exc:  # protobuf raises these for bad bytes
            return Malformed(f"request is not a valid protobuf message ({str(exc)[:120] or type(exc).__name__})")

    return deserialize


def guarded_handler(handler: Any, check: Callable[[bytes], None] | None = None) -> Any:
    """The same method handler with its request deserializer wrapped by `bounded`."""
    return handler._replace(request_deserializer=bounded(handler.request_deserializer, check))
