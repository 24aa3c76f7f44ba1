from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf.internal import containers as _containers

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("raw_scores", "texts", "top_k")
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RAW_SCORES_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    raw_scores: bool
    def __init__(
        self, texts: _Iterable[str] | None = ..., top_k: int | None = ..., raw_scores: bool | None = ...
    ) -> None: ...

class LabelScore(_message.Message):
    __slots__ = ("label", "score")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    def __init__(self, label: str | None = ..., score: float | None = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("label", "labels", "logits", "score", "top_k", "truncated")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    top_k: _containers.RepeatedCompositeFieldContainer[LabelScore]
    truncated: bool
    logits: _containers.RepeatedScalarFieldContainer[float]
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(
        self,
        label: str | None = ...,
        score: float | None = ...,
        top_k: _Iterable[LabelScore | _Mapping] | None = ...,
        truncated: bool | None = ...,
        logits: _Iterable[float] | None = ...,
        labels: _Iterable[str] | None = ...,
    ) -> None: ...

class Timings(_message.Message):
    __slots__ = ("inference_us", "queue_us", "tokenize_us", "total_us")
    QUEUE_US_FIELD_NUMBER: _ClassVar[int]
    TOKENIZE_US_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_US_FIELD_NUMBER: _ClassVar[int]
    TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    queue_us: int
    tokenize_us: int
    inference_us: int
    total_us: int
    def __init__(
        self,
        queue_us: int | None = ...,
        tokenize_us: int | None = ...,
        inference_us: int | None = ...,
        total_us: int | None = ...,
    ) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results", "timings")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Classification]
    timings: Timings
    def __init__(
        self,
        results: _Iterable[Classification | _Mapping] | None = ...,
        timings: Timings | _Mapping | None = ...,
    ) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = (
        "base_model",
        "bundle_sha256",
        "labels",
        "max_length",
        "name",
        "problem_type",
        "provider",
        "task",
        "variant",
    )
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    task: str
    problem_type: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    variant: str
    provider: str
    max_length: int
    bundle_sha256: str
    base_model: str
    def __init__(
        self,
        name: str | None = ...,
        task: str | None = ...,
        problem_type: str | None = ...,
        labels: _Iterable[str] | None = ...,
        variant: str | None = ...,
        provider: str | None = ...,
        max_length: int | None = ...,
        bundle_sha256: str | None = ...,
        base_model: str | None = ...,
    ) -> None: ...
