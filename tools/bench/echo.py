"""A trivial echo of the fronts baton serves: measures the load generator's own ceiling, and each front's floor.

    python -m baton.tools.bench.echo PORT_FILE [--http-port-file FILE] [--event-loop asyncio|uvloop]

It writes its gRPC port to PORT_FILE (and, with --http-port-file, the HTTP echo's port to that file) and serves until
killed. The gRPC echo answers the domain API's Classify and KServe's ModelInfer; the HTTP echo (uvicorn with
httptools, the stack `baton serve` runs, on the same event loop) answers `/v1/classify`, OIP's
`/v2/models/{name}/infer`, `/v1/model` and `/v2/health/ready`. Each parses the request and answers one result per
text, so that what remains in a real server above it is the server's own work.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import grpc
import orjson

from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.kserve_codec import encode_bytes_raw
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc
from baton.task import Task

__all__ = ["main"]

_MODEL = orjson.dumps({"task": str(Task.CLASSIFICATION), "name": "echo"})
_JSON = [(b"content-type", b"application/json")]


class _Echo(pb_grpc.TextClassifierServicer):
    async def Classify(self, request: pb.ClassifyRequest, context: Any) -> pb.ClassifyResponse:
        return pb.ClassifyResponse(results=[pb.Classification(label="echo", score=1.0) for _ in request.texts])


class _KEcho(kpb_grpc.GRPCInferenceServiceServicer):
    async def ModelInfer(self, request: kpb.ModelInferRequest, context: Any) -> kpb.ModelInferResponse:
        response = kpb.ModelInferResponse(model_name=request.model_name)
        response.outputs.append(kpb.ModelInferResponse.InferOutputTensor(name="label", datatype="BYTES", shape=[1]))
        response.raw_output_contents.append(encode_bytes_raw([b"echo"]))
        return response


def _http_answer(path: str, body: bytes) -> bytes:
    """The echo's JSON answer: one result per text of a request (parsed, as a server must), or the model's info."""
    if path == "/v1/classify":
        texts = orjson.loads(body)["texts"]
        return orjson.dumps({"results": [{"label": "echo", "score": 1.0} for _ in texts]})
    if path.endswith("/infer"):
        (column, *_) = orjson.loads(body)["inputs"]
        data = ["echo"] * len(column["data"])
        return orjson.dumps({"outputs": [{"name": "label", "datatype": "BYTES", "shape": [len(data)], "data": data}]})
    return _MODEL if path == "/v1/model" else b"{}"


async def _http_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The HTTP echo as a plain ASGI app (as baton's own app is)."""
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = _http_answer(scope["path"], body)
    await send({"type": "http.response.start", "status": 200, "headers": _JSON})
    await send({"type": "http.response.body", "body": answer})


async def _start_http(port_file: Path) -> asyncio.Future[None]:
    import uvicorn

    from baton.serving.http.front import listening_socket

    sock = listening_socket("127.0.0.1", 0)  # bound as `baton serve` binds its HTTP port
    config = uvicorn.Config(
        _http_echo,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    # `_serve`, not `serve`: serve() would take SIGTERM over, and the process must end on it
    task = asyncio.ensure_future(server._serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    port_file.write_text(str(sock.getsockname()[1]))
    return task


async def _serve(port_file: Path, http_port_file: Path | None) -> None:
    server = grpc.aio.server()
    pb_grpc.add_TextClassifierServicer_to_server(_Echo(), server)
    kpb_grpc.add_GRPCInferenceServiceServicer_to_server(_KEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    http = await _start_http(http_port_file) if http_port_file is not None else None
    port_file.write_text(str(port))
    await server.wait_for_termination()
    if http is not None:
        http.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m baton.tools.bench.echo")
    parser.add_argument("port_file", type=Path)
    parser.add_argument("--http-port-file", type=Path)
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    serve = _serve(args.port_file, args.http_port_file)
    if args.event_loop == "uvloop":
        import uvloop

        uvloop.run(serve)
    else:
        asyncio.run(serve)


if __name__ == "__main__":
    main()
