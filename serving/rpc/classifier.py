"""The `TextClassifier` service (baton.serving.v1, classifier.proto)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from baton.serving.rpc.common import ServerView, model_info, serve_stream, serve_unary, timings, wrong_task
from baton.serving.rpc.guards import Checks, add_guarded
from baton.serving.tasks.classification import text_logits
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc
from baton.task import Task

__all__ = ["SERVICE", "TASK", "Classifier", "register"]

TASK = Task.CLASSIFICATION
SERVICE = pb.DESCRIPTOR.services_by_name["TextClassifier"].full_name


def register(view: ServerView, server: grpc.aio.Server, checks: Checks) -> None:
    limits = {"Classify": checks.texts, "ClassifyStream": checks.texts}
    add_guarded(pb_grpc.add_TextClassifierServicer_to_server, Classifier(view), server, limits)


class Classifier(pb_grpc.TextClassifierServicer):
    def __init__(self, server: ServerView) -> None:
        self.s = server

    async def _answer(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> pb.ClassifyResponse:
        started = time.perf_counter()
        self.s.refuse_malformed(method, request)
        model = self.s.resolve(request.model, None, TASK)
        if model.task is not TASK:
            raise wrong_task(model.task, TASK)
        pairs = list(request.text_pairs) if request.text_pairs else None
        long_text = model.long_text(request.long_text, request.chunk_combine)
        results = await self.s.classify(model, list(request.texts), pairs, context.time_remaining(), method, long_text)
        k = request.top_k if request.HasField("top_k") and request.top_k > 0 else None
        out = []
        for r in results:
            p = r.prediction
            top = p.top_k[:k] if k else p.top_k
            out.append(
                pb.Classification(
                    label=p.label,
                    score=p.score,
                    truncated=p.truncated,
                    top_k=[pb.LabelScore(label=label, score=score) for label, score in top],
                    logits=text_logits(r.logits, p) if request.raw_scores else [],
                    labels=p.labels or [],
                    empty=p.empty,
                )
            )
        return pb.ClassifyResponse(results=out, timings=timings(results, started))

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ClassifyResponse:
        return await serve_unary(self._answer, request, context, "Classify")  # type: ignore[no-any-return]

    async def ClassifyStream(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ClassifyResponse]:
        async for response in serve_stream(self.s, request_iterator, context, self._answer, "ClassifyStream"):
            yield response

    async def _info(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> pb.ModelInfo:
        return model_info(self.s.resolve(request.model, None, TASK))

    async def GetModelInfo(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ModelInfo:
        return await serve_unary(self._info, request, context, "GetModelInfo")  # type: ignore[no-any-return]
