"""The gRPC front: the server's life cycle and admission (`server.py`), who may call (`security.py`), wire bounds
(`guards.py`, `wire.py`), and one module per service (`classifier.py`, `recognizer.py`, `kserve.py`) on a typed
view of the server (`common.ServerView`). The runtime below it (engine, batcher, tasks) imports no grpc."""

from baton.serving.rpc.server import BatonServer

__all__ = ["BatonServer"]
