"""The Open Inference Protocol (KServe v2) over gRPC: the bundle's task says which outputs it answers and how they
are encoded (serving/tasks/)."""

from __future__ import annotations

from typing import Any

import grpc

from baton.errors import InvalidRequest, NotFound
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.oip import (
    InputTensor,
    check_id,
    given_elements,
    model_metadata,
    raw_elements,
    texts_of,
    wanted_outputs,
)
from baton.serving.repository import Model
from baton.serving.rpc.common import ServerView, serve_unary
from baton.serving.rpc.guards import Checks, add_guarded
from baton.serving.tasks import task_class

__all__ = ["SERVICE", "KServe", "register"]

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

    async def _model_ready(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> Any:
        self.s.refuse_malformed(method, request)
        try:
            self.s.resolve(request.name, request.version)
        except NotFound:
            return kpb.ModelReadyResponse(ready=False)
        return kpb.ModelReadyResponse(ready=self.s.ready)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await serve_unary(self._model_ready, request, context, "ModelReady")

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> kpb.ServerMetadataResponse:
        from baton import __version__

        return kpb.ServerMetadataResponse(name="baton", version=__version__, extensions=["model_repository"])

    async def _model_metadata(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> Any:
        self.s.refuse_malformed(method, request)
        model = self.s.resolve(request.name, request.version)
        meta = model_metadata(model, self.s.repository.versions(model.name))
        tm = kpb.ModelMetadataResponse.TensorMetadata
        inputs, outputs = ([tm(**t) for t in meta.pop(key)] for key in ("inputs", "outputs"))
        return kpb.ModelMetadataResponse(**meta, inputs=inputs, outputs=outputs)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await serve_unary(self._model_metadata, request, context, "ModelMetadata")

    def _inputs(self, model: Model, request: Any) -> tuple[list[str], list[str] | None]:
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidRequest(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
        tensors = []
        for i, tensor in enumerate(request.inputs):
            if raw and tensor.HasField("contents"):
                raise InvalidRequest(f"input '{tensor.name}' has both contents and raw_input_contents: send one")
            elements = raw_elements(raw[i]) if raw else given_elements(list(tensor.contents.bytes_contents))
            tensors.append(InputTensor(tensor.name, tensor.datatype, list(tensor.shape), elements))
        return texts_of(tensors, model.bundle.manifest.inputs, self.s.config.max_texts_per_request)

    async def _infer(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> Any:
        self.s.refuse_malformed(method, request)
        model = self.s.resolve(request.model_name, request.model_version)
        check_id(request.id)
        wanted = wanted_outputs(model.task, model.bundle.labels, [o.name for o in request.outputs])
        texts, pairs = self._inputs(model, request)
        results = await self.s.classify(model, texts, pairs, context.time_remaining(), method)
        response = kpb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=request.id)
        out_tensor = kpb.ModelInferResponse.InferOutputTensor
        answers = [r.prediction for r in results]
        for t in task_class(model.task).encode_outputs(answers, wanted, model.bundle.labels):
            response.outputs.append(out_tensor(name=t.name, datatype=t.datatype, shape=list(t.shape)))
            response.raw_output_contents.append(t.raw)
        return response

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await serve_unary(self._infer, request, context, "ModelInfer")

    # ---- the repository extension (Triton's), for `baton serve DIR --model-control explicit|poll` ----------------
    async def _index(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> Any:
        index = kpb.RepositoryIndexResponse.ModelIndex
        rows = self.s.repository.index(ready_only=request.ready)
        return kpb.RepositoryIndexResponse(models=[index(name=n, version=v, state=s, reason=r) for n, v, s, r in rows])

    async def RepositoryIndex(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await serve_unary(self._index, request, context, "RepositoryIndex")

    async def _load(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> Any:
        await self.s.load_model(request.model_name)
        return kpb.RepositoryModelLoadResponse()

    async def RepositoryModelLoad(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await serve_unary(self._load, request, context, "RepositoryModelLoad")

    async def _unload(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> Any:
        await self.s.unload_model(request.model_name)
        return kpb.RepositoryModelUnloadResponse()

    async def RepositoryModelUnload(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await serve_unary(self._unload, request, context, "RepositoryModelUnload")
