"""A trivial echo of the TextClassifier and KServe APIs: measures the load generator's own ceiling.

Run as `python -m baton.tools.bench.echo PORT_FILE`; it writes its port to PORT_FILE and serves until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc

from baton.serving.kserve import grpc_service_pb2 as kpb
from baton.serving.kserve import grpc_service_pb2_grpc as kpb_grpc
from baton.serving.kserve_codec import encode_bytes_raw
from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.v1 import classifier_pb2_grpc as pb_grpc

__all__ = ["main"]


class _Echo(pb_grpc.TextClassifierServicer):
    async def Classify(self, request: pb.ClassifyRequest, context: Any) -> pb.ClassifyResponse:
        return pb.ClassifyResponse(results=[pb.Classification(label="echo", score=1.0) for _ in request.texts])


class _KEcho(kpb_grpc.GRPCInferenceServiceServicer):
    async def ModelInfer(self, request: kpb.ModelInferRequest, context: Any) -> kpb.ModelInferResponse:
        response = kpb.ModelInferResponse(model_name=request.model_name)
        response.outputs.append(kpb.ModelInferResponse.InferOutputTensor(name="label", datatype="BYTES", shape=[1]))
        response.raw_output_contents.append(encode_bytes_raw([b"echo"]))
        return response


async def _serve(port_file: Path) -> None:
    server = grpc.aio.server()
    pb_grpc.add_TextClassifierServicer_to_server(_Echo(), server)
    kpb_grpc.add_GRPCInferenceServiceServicer_to_server(_KEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    port_file.write_text(str(port))
    await server.wait_for_termination()


def main() -> None:
    asyncio.run(_serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
