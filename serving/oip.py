"""The Open Inference Protocol (KServe v2) rules every front shares, gRPC and HTTP alike: which input tensors a
model takes and how they become texts, which outputs may be asked for, and the bounds on what a request controls.

Each front turns its wire form (protobuf contents or raw bytes; JSON data or the binary extension) into `InputTensor`s
whose elements are decoded only after the cheap checks (names, datatype, shape) pass, and at most `limit` + 1 of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baton.errors import InvalidRequest
from baton.serving.kserve_codec import Tensor, decode_bytes_raw
from baton.serving.tasks import task_class
from baton.task import Task

__all__ = [
    "MAX_ID_CHARS",
    "InputTensor",
    "check_id",
    "given_elements",
    "json_data",
    "model_metadata",
    "raw_elements",
    "texts_of",
    "wanted_outputs",
]

MAX_ID_CHARS = 256  # a request's `id`, which the answer repeats


@dataclass(frozen=True)
class InputTensor:
    """One input as the front received it. `elements(limit)` decodes at most `limit` + 1 elements (bytes or str) and
    raises ValueError for a malformed encoding."""

    name: str
    datatype: str
    shape: Sequence[int]
    elements: Callable[[int], Sequence[bytes | str]]


def check_id(request_id: str) -> None:
    if len(request_id) > MAX_ID_CHARS:  # echoed back: bounded before it costs an answer's size
        raise InvalidRequest(f"id has {len(request_id)} characters; the limit is {MAX_ID_CHARS}")


def wanted_outputs(task: Task, labels: Sequence[str], requested: Sequence[str]) -> list[str]:
    """The outputs to answer: those requested, in their order, or every output of the task."""
    known = [o.name for o in task_class(task).outputs(labels)]
    wanted = list(requested) or known
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise InvalidRequest(f"unknown output(s): {', '.join(n[:40] for n in unknown[:8])}; this model has {known}")
    return wanted


def texts_of(inputs: Sequence[InputTensor], declared: Sequence[str], limit: int) -> tuple[list[str], list[str] | None]:
    """`text` (and `text_pair` for a pair model) as strings: BYTES tensors of shape [N], N <= `limit`."""
    names = [t.name[:40] for t in inputs[:8]]
    if len(inputs) != len(declared) or sorted(names) != sorted(declared):
        raise InvalidRequest(f"inputs must be {' and '.join(declared)} (BYTES, shape [N]); got {names}")
    columns: dict[str, list[str]] = {}
    for tensor in inputs:
        if tensor.datatype != "BYTES":
            raise InvalidRequest(f"input '{tensor.name}' must be of datatype BYTES (got {str(tensor.datatype)[:20]})")
        shape = list(tensor.shape)
        if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 0:
            raise InvalidRequest(f"input '{tensor.name}' must have shape [N] with N >= 0 (got {shape[:8]})")
        try:
            elements = tensor.elements(limit)
            texts = [e if isinstance(e, str) else e.decode("utf-8") for e in elements]
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"input '{tensor.name}': {exc}") from exc
        if len(texts) > limit:
            raise InvalidRequest(f"input '{tensor.name}' holds more than {limit} texts; the limit is {limit}")
        if shape[0] != len(texts):
            raise InvalidRequest(f"input '{tensor.name}' has shape {shape} but {len(texts)} elements")
        columns[tensor.name] = texts
    return columns["text"], columns.get("text_pair")


def raw_elements(raw: bytes) -> Callable[[int], list[bytes]]:
    """`InputTensor.elements` for raw BYTES contents (4-byte little-endian length, then the bytes)."""
    return lambda limit: decode_bytes_raw(raw, limit + 1)


def given_elements(elements: Sequence[bytes | str]) -> Callable[[int], Sequence[bytes | str]]:
    """`InputTensor.elements` for elements the front already holds decoded (protobuf contents, JSON data)."""
    return lambda limit: elements


def model_metadata(model: Any, versions: Sequence[int]) -> dict[str, Any]:
    """ModelMetadata of a model version (`model`: serving/repository/model.py) whose model serves `versions`."""
    tensor = {"datatype": "BYTES", "shape": [-1]}
    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": f"onnxruntime_{model.variant}",
        "inputs": [{"name": name, **tensor} for name in model.bundle.manifest.inputs],
        "outputs": [
            {"name": o.name, "datatype": o.datatype, "shape": list(o.shape)}
            for o in task_class(model.task).outputs(model.bundle.labels)
        ],
    }


def json_data(tensor: Tensor) -> list[Any]:
    """An output tensor's contents as the flat, row-major JSON `data` array: strings for BYTES, numbers for FP32."""
    if tensor.datatype == "BYTES":
        return [e.decode("utf-8") for e in decode_bytes_raw(tensor.raw)]
    return np.frombuffer(tensor.raw, dtype="<f4").tolist()  # type: ignore[no-any-return]
