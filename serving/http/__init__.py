"""The HTTP front of `baton serve`, in the same process and on the same event loop as gRPC, behind the same
batcher, limits, auth and metrics: the Open Inference Protocol v2 REST (`oip.py`), task-shaped JSON routes
(`tasks.py`), their OpenAPI document (`openapi.py`) and a page to try the model (`page.py`). `app.py` routes,
authenticates and bounds every request before its handler runs; `front.py` runs it on uvicorn."""

from baton.serving.http.front import HttpFront

__all__ = ["HttpFront"]
