"""The Open Inference Protocol v2 over HTTP/REST, with the binary tensor extension, as `tritonclient.http` calls it.

    GET  /v2/health/live                      200 {"live": true}                    (public: a liveness probe)
    GET  /v2/health/ready                     200 {"ready": true}, 400 when not     (public: a readiness probe)
    GET  /v2                                  server metadata
    GET  /v2/models/{m}[/versions/{v}]        model metadata (and `card`: where the model card is)
    GET  /v2/models/{m}[/versions/{v}]/ready  200, or 400 when not ready
    POST /v2/models/{m}[/versions/{v}]/infer  inference
    POST /v2/repository/index                 every model version and its state (Triton's repository extension)
    POST /v2/repository/models/{m}/load       load or reload a model from the repository folder
    POST /v2/repository/models/{m}/unload     unload it

Inputs and outputs are those of the gRPC KServe service (serving/oip.py, serving/tasks/): `text` (and `text_pair`)
BYTES [N]. An input's elements come as JSON `data` (strings) or, with `parameters.binary_data_size`, from the
binary part that follows the JSON header (`Inference-Header-Content-Length` bytes of it). An output is binary when
it asks for `binary_data`, or when the request's `binary_data_output` parameter is true; the answer then carries the
same header. Errors are `{"error": "..."}` with a 4xx status (5xx: the server's fault).
"""

from __future__ import annotations

from typing import Any

import orjson

from baton import __version__
from baton.errors import InvalidRequest, NotFound
from baton.serving.http.app import Request, Response, Route, json_response, parse_json
from baton.serving.oip import (
    InputTensor,
    check_id,
    given_elements,
    json_data,
    model_metadata,
    raw_elements,
    texts_of,
    wanted_outputs,
)
from baton.serving.tasks import task_class

__all__ = ["ROUTES"]

_MAX_TENSORS = 8  # inputs or outputs listed in one request: a model takes at most two
_BINARY = "inference-header-content-length"


def _model(request: Request) -> Any:
    """The model version the path names (404 naming what exists)."""
    return request.server.resolve(request.params["model"], request.params.get("version"))


async def _live(request: Request) -> Response:
    return json_response({"live": True})


async def _ready(request: Request) -> Response:
    if request.server.ready:
        return json_response({"ready": True})
    return json_response({"error": "not ready", "ready": False}, 400)


async def _server_metadata(request: Request) -> Response:
    extensions = ["binary_tensor_data", "model_repository"]
    return json_response({"name": "baton", "version": __version__, "extensions": extensions})


async def _model_ready(request: Request) -> Response:
    try:
        model = _model(request)
    except NotFound as exc:
        return json_response({"error": str(exc), "ready": False}, 400)
    if request.server.ready:
        return json_response({"name": model.name, "ready": True})
    return json_response({"error": f"model '{model.name}' is not ready", "ready": False}, 400)


async def _model_metadata(request: Request) -> Response:
    model = _model(request)
    doc = model_metadata(model, request.server.repository.versions(model.name))
    if model.card_text is not None:
        doc["card"] = f"/v1/models/{model.name}/card"
    return json_response(doc)


async def _index(request: Request) -> Response:
    body = await request.body()
    doc = parse_json(body, "the body") if body.strip() else {}
    ready = isinstance(doc, dict) and doc.get("ready") is True
    rows = request.server.repository.index(ready_only=ready)
    return json_response([{"name": n, "version": v, "state": s, "reason": r} for n, v, s, r in rows])


async def _load(request: Request) -> Response:
    await request.body()  # parameters are not used
    await request.server.load_model(request.params["model"])
    return json_response({})


async def _unload(request: Request) -> Response:
    await request.body()
    await request.server.unload_model(request.params["model"])
    return json_response({})


def _split(request: Request, body: bytes) -> tuple[Any, bytes]:
    """The JSON header and the binary part that follows it."""
    size = request.headers.get(_BINARY)
    if size is None:
        head, tail = body, b""
    else:
        if not size.isdigit() or int(size) > len(body):
            raise InvalidRequest(f"Inference-Header-Content-Length is {size[:20]!r}; the body has {len(body)} bytes")
        head, tail = body[: int(size)], body[int(size) :]
    doc = parse_json(head, "the inference header")
    if not isinstance(doc, dict):
        raise InvalidRequest("the inference request must be a JSON object")
    return doc, tail


def _list(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidRequest(f"'{key}' must be a list of objects")
    if len(value) > _MAX_TENSORS:
        raise InvalidRequest(f"'{key}' lists {len(value)} tensors; this model takes at most 2")
    return value


def _params(tensor: dict[str, Any]) -> dict[str, Any]:
    params = tensor.get("parameters", {})
    if not isinstance(params, dict):
        raise InvalidRequest("'parameters' must be an object")
    return params


def _inputs(doc: dict[str, Any], tail: bytes) -> list[InputTensor]:
    tensors: list[InputTensor] = []
    offset = 0
    for tensor in _list(doc, "inputs"):
        name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str) or not isinstance(shape, list):
            raise InvalidRequest("each input needs a 'name', a 'datatype' and a 'shape'")
        size = _params(tensor).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(tail):
                raise InvalidRequest(f"input '{name[:40]}': binary_data_size {size!r} passes the end of the body")
            raw = tail[offset : offset + size]
            offset += size
            tensors.append(InputTensor(name, datatype, shape, raw_elements(raw)))
            continue
        data = tensor.get("data")
        if not isinstance(data, list) or not all(isinstance(e, str) for e in data):
            raise InvalidRequest(f"input '{name[:40]}': 'data' must be a list of strings (or send it binary)")
        tensors.append(InputTensor(name, datatype, shape, given_elements(data)))
    if offset != len(tail):
        raise InvalidRequest(f"{len(tail) - offset} bytes of binary data follow the inputs that no input claims")
    return tensors


def _requested(doc: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The outputs asked for, in order, and those to send binary."""
    every_binary = _params(doc).get("binary_data_output") is True
    names, binary = [], set()
    for tensor in _list(doc, "outputs"):
        name = tensor.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("each output needs a 'name'")
        names.append(name)
        if _params(tensor).get("binary_data") is True:
            binary.add(name)
    return names, binary | ({"*"} if every_binary else set())


async def _infer(request: Request) -> Response:
    s = request.server
    model = _model(request)
    doc, tail = _split(request, await request.body())
    request_id = doc.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidRequest("'id' must be a string")
    check_id(request_id)
    names, binary = _requested(doc)
    wanted = wanted_outputs(model.task, model.bundle.labels, names)
    texts, pairs = texts_of(_inputs(doc, tail), model.bundle.manifest.inputs, s.config.max_texts_per_request)
    results = await s.classify(model, texts, pairs, None, "http.ModelInfer")
    answer: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version), "outputs": []}
    if request_id:
        answer["id"] = request_id
    parts = []
    for t in task_class(model.task).encode_outputs([r.prediction for r in results], wanted, model.bundle.labels):
        out: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        if "*" in binary or t.name in binary:
            out["parameters"] = {"binary_data_size": len(t.raw)}
            parts.append(t.raw)
        else:
            out["data"] = json_data(t)
        answer["outputs"].append(out)
    head = orjson.dumps(answer)
    if not parts:
        return Response(200, head)
    return Response(
        200, b"".join([head, *parts]), "application/octet-stream", [("inference-header-content-length", str(len(head)))]
    )


def _both(pattern: str) -> list[str]:
    """A model route with and without its version segment."""
    return [pattern.format(m="/v2/models/{model}"), pattern.format(m="/v2/models/{model}/versions/{version}")]


ROUTES = [
    Route("GET", "/v2/health/live", "ServerLive", _live, public=True, summary="Is the process up?"),
    Route("GET", "/v2/health/ready", "ServerReady", _ready, public=True, summary="Is it ready for inference?"),
    Route("GET", "/v2", "ServerMetadata", _server_metadata, summary="Server name, version and extensions."),
    *(
        Route("GET", p, "ModelMetadata", _model_metadata, summary="Inputs, outputs and platform.", response="Meta")
        for p in _both("{m}")
    ),
    *(Route("GET", p, "ModelReady", _model_ready, summary="Is the model ready?") for p in _both("{m}/ready")),
    *(
        Route(
            "POST",
            p,
            "ModelInfer",
            _infer,
            summary="Inference on BYTES tensors (JSON data or the binary extension).",
            request="InferRequest",
            response="InferResponse",
        )
        for p in _both("{m}/infer")
    ),
    Route(
        "POST",
        "/v2/repository/index",
        "RepositoryIndex",
        _index,
        summary="Every model version and its state.",
        request="IndexRequest",
    ),
    Route(
        "POST",
        "/v2/repository/models/{model}/load",
        "RepositoryModelLoad",
        _load,
        summary="Load (or reload) a model from the repository folder.",
        request="Empty",
    ),
    Route(
        "POST",
        "/v2/repository/models/{model}/unload",
        "RepositoryModelUnload",
        _unload,
        summary="Unload a model: its versions finish their calls, then are freed.",
        request="Empty",
    ),
]
