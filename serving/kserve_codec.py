"""Open Inference Protocol (KServe v2) tensor encoding: BYTES elements and FP32 outputs."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Output", "Tensor", "decode_bytes_raw", "encode_bytes_raw", "encode_fp32_raw"]


@dataclass(frozen=True)
class Output:
    """An output a model declares (ModelMetadata): -1 is a dimension of any size (the texts)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Tensor:
    """One output of an answer: its name, datatype, shape and raw little-endian contents."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    raw: bytes


def decode_bytes_raw(raw: bytes, max_elements: int | None = None) -> list[bytes]:
    """Split raw BYTES contents: each element is a 4-byte little-endian length, then that many bytes.

    Stops after `max_elements` + 1 elements (the caller refuses that many), so a blob of a million empty elements
    costs no more than the limit."""
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if max_elements is not None and len(out) > max_elements:
            break
        if pos + 4 > len(raw):
            raise ValueError("truncated length prefix in raw_input_contents")
        (size,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + size > len(raw):
            raise ValueError("element longer than the remaining raw_input_contents")
        out.append(raw[pos : pos + size])
        pos += size
    return out


def encode_bytes_raw(elements: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def encode_fp32_raw(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()
