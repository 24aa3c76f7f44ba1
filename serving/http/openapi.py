"""The OpenAPI 3.1 document of every route, built from the route table itself (so a route cannot be missing from it),
with the JSON schemas of the bodies below. Served at `/openapi.json`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baton import __version__
from baton.serving.http.app import Request, Response, Route, json_response

__all__ = ["ROUTES", "document"]

_STR_LIST = {"type": "array", "items": {"type": "string"}}
_TIMINGS = {
    "type": "object",
    "properties": {k: {"type": "integer"} for k in ("queue_us", "tokenize_us", "inference_us", "total_us")},
}


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def _answers(item: dict[str, Any]) -> dict[str, Any]:
    """A task route's answer: one result per text, and the timings."""
    return _object(results={"type": "array", "items": item}, timings=_TIMINGS)


_TENSOR = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "ClassifyRequest": {
        "type": "object",
        "required": ["texts"],
        "additionalProperties": False,
        "properties": {
            "texts": _STR_LIST,
            "model": {"type": "string"},
            "text_pairs": _STR_LIST,
            "top_k": {"type": "integer", "minimum": 0},
            "raw_scores": {"type": "boolean"},
        },
    },
    "ClassifyResponse": _answers(
        _object(
            label={"type": "string"},
            score={"type": "number"},
            truncated={"type": "boolean"},
            top_k={"type": "array", "items": _object(label={"type": "string"}, score={"type": "number"})},
            labels=_STR_LIST,
            empty={"type": "boolean"},
            logits={"type": "array", "items": {"type": "number"}},
        )
    ),
    "RecognizeRequest": {
        "type": "object",
        "required": ["texts"],
        "additionalProperties": False,
        "properties": {"texts": _STR_LIST, "aggregation": {"type": "string"}, "model": {"type": "string"}},
    },
    "RecognizeResponse": _answers(
        _object(
            entities={
                "type": "array",
                "items": _object(
                    label={"type": "string"},
                    text={"type": "string"},
                    start={"type": "integer"},
                    end={"type": "integer"},
                    score={"type": "number"},
                ),
            },
            truncated={"type": "boolean"},
        )
    ),
    "ModelInfo": {"type": "object", "additionalProperties": True},
    "IndexRequest": _object(ready={"type": "boolean"}),
    "Empty": {"type": "object"},
    "Meta": {"type": "object", "additionalProperties": True},
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": _TENSOR},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "InferResponse": {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": _TENSOR},
        },
    },
}

_ERRORS = {
    "400": "a request that can never succeed as sent",
    "401": "no or a wrong bearer token",
    "404": "no such route, model or version",
    "408": "the body arrived too slowly",
    "413": "the body is over the size limit",
    "429": "the queue is full: retry with backoff",
    "503": "shutting down",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def document(routes: Sequence[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {"operationId": route.name, "summary": route.summary}
        params = [p.strip("{}") for p in route.pattern.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ]
        if route.request:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(route.request)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if route.response:
            ok["content"] = {"application/json": {"schema": _ref(route.response)}}
        error = {"content": {"application/json": {"schema": _ref("Error")}}}
        op["responses"] = {"200": ok, **{code: {"description": why, **error} for code, why in _ERRORS.items()}}
        if route.public:
            op["security"] = []
        paths.setdefault(route.pattern, {})[route.method.lower()] = op
    # uniquely named operations: a route's twin with path parameters is named after them (ModelMetadataByModel...)
    seen: set[str] = set()
    for ops in paths.values():
        for op in ops.values():
            if op["operationId"] in seen:
                op["operationId"] += "By" + "And".join(p["name"].title() for p in op.get("parameters", []))
            seen.add(op["operationId"])
    return {
        "openapi": "3.1.0",
        "info": {"title": "baton", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


async def _openapi(request: Request) -> Response:
    return json_response(document(request.routes))


ROUTES = [Route("GET", "/openapi.json", "OpenAPI", _openapi, public=True, summary="This document.")]
