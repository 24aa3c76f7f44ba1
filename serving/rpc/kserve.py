"""The Open Inference Protocol (KServe v2) over gRPC: the bundle's task says which outputs it answers and how they
are encoded (serving/tasks/)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from baton.errors import InputError, InvalidRequest, RequestFailed
from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.oip import InputTensor, check_id, raw_elements, texts_of, wanted_outputs
from baton.serving.rpc.common import ServerView, abort, grpc_code
from baton.serving.rpc.guards import Checks, add_guarded
from baton.serving.rpc.wire import Malformed
from baton.serving.tasks import task_class

__all__ = ["SERVICE", "KServe", "register"]

SERVICE = kpb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def register(view: ServerView, server: grpc.aio.Server, checks: Checks) -> None:
    add_guarded(kpb_grpc.add_GRPCInferenceServiceServicer_to_server, KServe(view), server, {"ModelInfer": checks.infer})


def _given(elements: list[bytes]) -> Callable[[int], list[bytes]]:
    return lambda limit: elements


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
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidRequest(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
        tensors = []
        for i, tensor in enumerate(request.inputs):
            if raw and tensor.HasField("contents"):
                raise InvalidRequest(f"input '{tensor.name}' has both contents and raw_input_contents: send one")
            elements = raw_elements(raw[i]) if raw else _given(list(tensor.contents.bytes_contents))
            tensors.append(InputTensor(tensor.name, tensor.datatype, list(tensor.shape), elements))
        return texts_of(tensors, self.s.bundle.manifest.inputs, self.s.config.max_texts_per_request)

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            self.s.refuse_malformed("ModelInfer", request)
            await self._check_model(request.model_name, context)
            check_id(request.id)
            wanted = wanted_outputs(self.s.task, self.s.bundle.labels, [o.name for o in request.outputs])
            texts, pairs = self._inputs(request)
            results = await self.s.classify(texts, pairs, context.time_remaining(), "ModelInfer")
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
