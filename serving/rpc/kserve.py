"""The Open Inference Protocol (KServe v2) over gRPC: the bundle's task says which outputs it answers and how they
are encoded (serving/tasks/)."""

from __future__ import annotations

from typing import Any

import grpc

from baton.errors import InputError, InvalidRequest, RequestFailed
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.kserve_codec import decode_bytes_raw
from baton.serving.rpc.common import ServerView, abort, grpc_code
from baton.serving.rpc.guards import Checks, add_guarded
from baton.serving.rpc.wire import Malformed
from baton.serving.tasks import task_class

__all__ = ["MAX_ID_CHARS", "SERVICE", "KServe", "register"]

MAX_ID_CHARS = 256  # a request's `id`, which the answer repeats

SERVICE = kpb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def register(view: ServerView, server: grpc.aio.Server, checks: Checks) -> None:
    add_guarded(kpb_grpc.add_GRPCInferenceServiceServicer_to_server, KServe(view), server, {"ModelInfer": checks.infer})


class KServe(kpb_grpc.GRPCInferenceServiceServicer):
    """The Open Inference Protocol. Inputs: `text` BYTES [N] (and `text_pair` BYTES [N] for a pair model), as
    `contents.bytes_contents` or `raw_input_contents` — one or the other, never both."""

    def __init__(self, server: ServerView) -> None:
        self.s = server

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerLiveResponse:
        return kpb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerReadyResponse:
        return kpb.ServerReadyResponse(ready=self.s.ready)

    async def _check_model(self, name: str, context: grpc.aio.ServicerContext) -> None:
        if name != self.s.model_name:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"unknown model '{name[:200]}'; this server serves '{self.s.model_name}'",
            )

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        await self._check_model(request.name, context)
        return kpb.ModelReadyResponse(ready=self.s.ready)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerMetadataResponse:
        from baton import __version__

        return kpb.ServerMetadataResponse(name="baton", version=__version__, extensions=[])

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Malformed):
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        await self._check_model(request.name, context)
        tm = kpb.ModelMetadataResponse.TensorMetadata
        outputs = [
            tm(name=o.name, datatype=o.datatype, shape=list(o.shape))
            for o in task_class(self.s.task).outputs(self.s.bundle.labels)
        ]
        return kpb.ModelMetadataResponse(
            name=self.s.model_name,
            versions=["1"],
            platform=f"onnxruntime_{self.s.variant}",
            inputs=[tm(name=name, datatype="BYTES", shape=[-1]) for name in self.s.bundle.manifest.inputs],
            outputs=outputs,
        )

    def _inputs(self, request: Any) -> tuple[list[str], list[str] | None]:
        def bad(message: str) -> InvalidRequest:
            return InvalidRequest(message)

        declared = self.s.bundle.manifest.inputs
        names = [t.name for t in request.inputs]
        if sorted(names) != sorted(declared):
            raise bad(f"inputs must be {' and '.join(declared)} (BYTES, shape [N]); got {names[:8]}")
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise bad(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
        limit = self.s.config.max_texts_per_request
        columns: dict[str, list[str]] = {}
        for i, tensor in enumerate(request.inputs):
            if tensor.datatype != "BYTES":
                raise bad(f"input '{tensor.name}' must be of datatype BYTES (got {tensor.datatype[:20]})")
            shape = list(tensor.shape)
            if len(shape) != 1 or shape[0] < 0:
                raise bad(f"input '{tensor.name}' must have shape [N] with N >= 0 (got {shape[:8]})")
            if raw and tensor.HasField("contents"):
                raise bad(f"input '{tensor.name}' has both contents and raw_input_contents: send one")
            try:
                elements = decode_bytes_raw(raw[i], limit + 1) if raw else list(tensor.contents.bytes_contents)
                texts = [element.decode("utf-8") for element in elements]
            except (ValueError, UnicodeDecodeError) as exc:
                raise bad(f"input '{tensor.name}': {exc}") from exc
            if len(texts) > limit:
                raise bad(f"input '{tensor.name}' holds more than {limit} texts; the limit is {limit}")
            if shape[0] != len(texts):
                raise bad(f"input '{tensor.name}' has shape {shape} but {len(texts)} elements")
            columns[tensor.name] = texts
        return columns["text"], columns.get("text_pair")

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            self.s.refuse_malformed("ModelInfer", request)
            await self._check_model(request.model_name, context)
            if len(request.id) > MAX_ID_CHARS:  # echoed back: bounded before it costs an answer's size
                raise InvalidRequest(f"id has {len(request.id)} characters; the limit is {MAX_ID_CHARS}")
            known = [o.name for o in task_class(self.s.task).outputs(self.s.bundle.labels)]
            wanted = [o.name for o in request.outputs] or list(known)
            unknown = [name for name in wanted if name not in known]
            if unknown:
                raise InvalidRequest(f"unknown output(s): {', '.join(unknown[:8])}")
            texts, pairs = self._inputs(request)
            results = await self.s.classify(texts, pairs, context, "ModelInfer")
        except (RequestFailed, InputError) as exc:
            await abort(context, grpc_code(exc), str(exc))
            raise  # unreachable: abort raises
        response = kpb.ModelInferResponse(model_name=self.s.model_name, model_version="1", id=request.id)
        out_tensor = kpb.ModelInferResponse.InferOutputTensor
        answers = [r.prediction for r in results]
        for t in task_class(self.s.task).encode_outputs(answers, wanted, self.s.bundle.labels):
            response.outputs.append(out_tensor(name=t.name, datatype=t.datatype, shape=list(t.shape)))
            response.raw_output_contents.append(t.raw)
        return response
