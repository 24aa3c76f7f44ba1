"""The `EntityRecognizer` service (baton.serving.v1, recognizer.proto) and the KServe `entities` output.

Texts go through the same batcher as classification (token budget, length-sorted); each answer lists the text's
entities with character offsets into the text as sent. A request may name another aggregation than the bundle's
default; the entities are then regrouped from the item's own token probabilities, with no second model run.

KServe v2 (kserve.py): input `text` BYTES [N]; output `entities` BYTES [N], each element one UTF-8 JSON document
(serving/tasks/token_classification.py):
    {"entities": [{"label": "PER", "text": "Ada Lovelace", "start": 0, "end": 12, "score": 0.98}, ...],
     "truncated": false}
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from baton.serving.rpc.common import ServerView, model_info, serve_stream, serve_unary, timings, wrong_task
from baton.serving.rpc.guards import Checks, add_guarded
from baton.serving.tasks import check_aggregation
from baton.serving.tasks.token_classification import regroup
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import recognizer_pb2 as rpb
from baton.serving.v1 import recognizer_pb2_grpc as rpb_grpc
from baton.task import Task

__all__ = ["SERVICE", "TASK", "Recognizer", "register"]

TASK = Task.ENTITIES
SERVICE = rpb.DESCRIPTOR.services_by_name["EntityRecognizer"].full_name


def register(view: ServerView, server: grpc.aio.Server, checks: Checks) -> None:
    limits = {"Recognize": checks.texts, "RecognizeStream": checks.texts}
    add_guarded(rpb_grpc.add_EntityRecognizerServicer_to_server, Recognizer(view), server, limits)


class Recognizer(rpb_grpc.EntityRecognizerServicer):
    def __init__(self, server: ServerView) -> None:
        self.s = server

    async def _answer(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> rpb.RecognizeResponse:
        started = time.perf_counter()
        self.s.refuse_malformed(method, request)
        model = self.s.resolve(request.model, None, TASK)
        if model.task is not TASK:
            raise wrong_task(model.task, TASK)
        aggregation = request.aggregation or None
        check_aggregation(TASK, aggregation)  # before any text is queued (an InputError: INVALID_ARGUMENT)
        results = await self.s.classify(model, list(request.texts), None, context.time_remaining(), method)
        out = []
        for r in results:
            answer = regroup(model.engine.task, r.prediction, r.logits, r.tokens, aggregation)
            out.append(
                rpb.TextEntities(
                    entities=[
                        rpb.Entity(label=e.label, text=e.text, start=e.start, end=e.end, score=e.score)
                        for e in answer.entities
                    ],
                    truncated=answer.truncated,
                )
            )
        return rpb.RecognizeResponse(results=out, timings=timings(results, started))

    async def Recognize(self, request: Any, context: grpc.aio.ServicerContext) -> rpb.RecognizeResponse:
        return await serve_unary(self._answer, request, context, "Recognize")  # type: ignore[no-any-return]

    async def RecognizeStream(
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rpb.RecognizeResponse]:
        async for response in serve_stream(self.s, request_iterator, context, self._answer, "RecognizeStream"):
            yield response

    async def _info(self, request: Any, context: grpc.aio.ServicerContext, method: str) -> pb.ModelInfo:
        return model_info(self.s.resolve(request.model, None, TASK))

    async def GetModelInfo(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ModelInfo:
        return await serve_unary(self._info, request, context, "GetModelInfo")  # type: ignore[no-any-return]
