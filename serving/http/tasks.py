"""Task-shaped JSON routes for callers who don't speak tensors; each answers what the Python `Client` returns.

    POST /v1/classify    {"texts": [...], "text_pairs": [...], "top_k": 2, "raw_scores": false}
                         -> {"results": [{"label", "score", "truncated", "top_k": [{"label", "score"}],
                                          "labels", "empty", ("logits")}], "timings": {...}}
    POST /v1/recognize   {"texts": [...], "aggregation": "simple"}
                         -> {"results": [{"entities": [{"label", "text", "start", "end", "score"}],
                                          "truncated"}], "timings": {...}}
    GET  /v1/models      every model version serving, with its info
    GET  /v1/model[s/{m}]        a model's info (GetModelInfo's fields; /v1/model: the only model), `card` if any
    GET  /v1/model[s/{m}]/card   its model card, Markdown

On a server of several models, a body names one with "model" (optional when only one model does the route's task).

A body's keys are checked: an unknown key is 400 naming it (a typo such as `text` is not silently ignored).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from baton.errors import InvalidRequest, NotFound, WrongTask
from baton.serving.batcher import timings_us
from baton.serving.http.app import Request, Response, Route, json_body, json_response
from baton.serving.tasks import check_aggregation
from baton.serving.tasks.classification import text_logits
from baton.serving.tasks.token_classification import regroup
from baton.task import Task

__all__ = ["ROUTES", "TASK_ROUTE", "model_info"]

TASK_ROUTE = {Task.CLASSIFICATION: "/v1/classify", Task.ENTITIES: "/v1/recognize"}  # the route that answers each task
_CLASSIFY_KEYS = {"texts", "text_pairs", "top_k", "raw_scores", "model", "long_text", "chunk_combine"}
_RECOGNIZE_KEYS = {"texts", "aggregation", "model"}


def _keys(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(f"unknown key(s) {', '.join(k[:40] for k in unknown[:8])}; send {sorted(allowed)}")


def _strings(body: Mapping[str, Any], key: str) -> list[str] | None:
    """A list of strings (its length is the server's to bound: the shared request path checks every front's)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"'{key}' must be a list of strings")
    return value


async def _read(request: Request, allowed: set[str], task: Task) -> tuple[Any, dict[str, Any], list[str]]:
    """The model, and the body checked: only `allowed` keys, a model of `task`, `texts` a bounded list of strings."""
    body = await json_body(request)
    _keys(body, allowed)
    name = body.get("model")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("'model' must be a string")
    model = request.server.resolve(name, None, task)
    if model.task is not task:
        raise WrongTask(f"model '{model.name}' is for {model.task}, not {task}: POST {TASK_ROUTE[model.task]}")
    texts = _strings(body, "texts")
    if texts is None:
        raise InvalidRequest("'texts' is required: a list of strings")
    return model, body, texts


async def _classify(request: Request) -> Response:
    started = time.perf_counter()
    s = request.server
    model, body, texts = await _read(request, _CLASSIFY_KEYS, Task.CLASSIFICATION)
    pairs = _strings(body, "text_pairs")
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise InvalidRequest("'top_k' must be a whole number >= 0 (0: every label)")
    raw_scores = body.get("raw_scores", False)
    if not isinstance(raw_scores, bool):
        raise InvalidRequest("'raw_scores' must be true or false")
    choices = [body.get(k) for k in ("long_text", "chunk_combine")]
    if any(c is not None and not isinstance(c, str) for c in choices):
        raise InvalidRequest("'long_text' and 'chunk_combine' must be strings")
    long_text = model.long_text(*choices)
    results = await s.classify(model, texts, pairs, None, "http.Classify", long_text)
    out = []
    for r in results:
        p = r.prediction
        top = p.top_k[:top_k] if top_k else p.top_k
        row: dict[str, Any] = {
            "label": p.label,
            "score": p.score,
            "truncated": p.truncated,
            "top_k": [{"label": label, "score": score} for label, score in top],
            "labels": p.labels or [],
            "empty": p.empty,
        }
        if raw_scores:
            row["logits"] = text_logits(r.logits, p)
        out.append(row)
    return json_response({"results": out, "timings": timings_us(results, started)})


async def _recognize(request: Request) -> Response:
    started = time.perf_counter()
    s = request.server
    model, body, texts = await _read(request, _RECOGNIZE_KEYS, Task.ENTITIES)
    aggregation = body.get("aggregation")
    if aggregation is not None and not isinstance(aggregation, str):
        raise InvalidRequest("'aggregation' must be a string")
    check_aggregation(Task.ENTITIES, aggregation or None)
    results = await s.classify(model, texts, None, None, "http.Recognize")
    out = []
    for r in results:
        answer = regroup(model.engine.task, r.prediction, r.logits, r.tokens, aggregation or None)
        out.append({"entities": [e.to_dict() for e in answer.entities], "truncated": answer.truncated})
    return json_response({"results": out, "timings": timings_us(results, started)})


def model_info(model: Any) -> dict[str, Any]:
    """GetModelInfo's fields as JSON, with the multi-label threshold and where the card is."""
    threshold = model.bundle.manifest.threshold if model.bundle.manifest.multi_label else None
    card = f"/v1/models/{model.name}/card" if model.card_text is not None else ""
    return {**model.info(), "threshold": threshold, "card": card}


def _named(request: Request) -> Any:
    """The model the path names, or the only one the server serves."""
    return request.server.resolve(request.params.get("model"))


async def _model(request: Request) -> Response:
    return json_response(model_info(_named(request)))


async def _models(request: Request) -> Response:
    return json_response({"models": [model_info(m) for m in request.server.repository.serving()]})


async def _card(request: Request) -> Response:
    model = _named(request)
    if model.card_text is None:
        raise NotFound(f"model '{model.name}' has no model card (exported before cards existed: export it again)")
    return Response(200, model.card_text, "text/markdown; charset=utf-8")


ROUTES = [
    Route(
        "POST",
        "/v1/classify",
        "Classify",
        _classify,
        summary="Classify texts.",
        request="ClassifyRequest",
        response="ClassifyResponse",
    ),
    Route(
        "POST",
        "/v1/recognize",
        "Recognize",
        _recognize,
        summary="Find the entities in texts.",
        request="RecognizeRequest",
        response="RecognizeResponse",
    ),
    Route("GET", "/v1/models", "ListModels", _models, summary="Every model version serving, with its info."),
    Route("GET", "/v1/model", "GetModelInfo", _model, summary="The only model's info.", response="ModelInfo"),
    Route("GET", "/v1/model/card", "ModelCard", _card, summary="The only model's card (Markdown)."),
    Route("GET", "/v1/models/{model}", "GetModelInfo", _model, summary="A model's info.", response="ModelInfo"),
    Route("GET", "/v1/models/{model}/card", "ModelCard", _card, summary="A model's card (Markdown)."),
]
