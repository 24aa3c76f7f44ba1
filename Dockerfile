# syntax=docker/dockerfile:1
# baton's serving image: the server (gRPC: domain API + KServe v2 + health; HTTP: KServe v2 REST, /v1 JSON, the page
# at /; metrics) with onnxruntime and tokenizers
# only: no torch, no training code paths exercised. docs/deploy.md says how to build, run and scale it.
#
#   docker build -t baton-serve:0.1.0 .                                     # the server, bundle mounted at run time
#   docker build --target serve-bundle --build-arg BUNDLE=bundles/demo \
#       -t baton-serve-demo:0.1.0 .                                         # the server with a bundle baked in

ARG PYTHON=python:3.11-slim

# ---- build: a wheel of baton and the `serve` extra, installed into a venv ------------------------------------------
FROM ${PYTHON} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md constraints.txt ./
COPY baton ./baton
COPY serving ./serving
COPY training ./training
COPY export ./export
COPY tools ./tools
RUN python -m venv /opt/baton \
    && /opt/baton/bin/pip install -c constraints.txt ".[serve]" \
    && /opt/baton/bin/python -c "import baton.serving, onnxruntime, tokenizers, grpc" \
    && ! /opt/baton/bin/python -c "import torch" 2>/dev/null

# ---- serve: the runtime image, a non-root user, the gRPC and metrics ports, a health check ------------------------
FROM ${PYTHON} AS serve
COPY --from=build /opt/baton /opt/baton
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin baton \
    && mkdir -p /models && chown baton /models
ENV PATH=/opt/baton/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
USER 10001
# 50051: gRPC (TextClassifier or EntityRecognizer, KServe v2 GRPCInferenceService, grpc.health.v1, reflection)
# 8000: HTTP (KServe v2 REST, /v1/classify and /v1/recognize, the page at /, /v2/health/live and /ready probes)
# 9464: Prometheus metrics (HTTP /metrics)
EXPOSE 50051 8000 9464
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 \
    CMD ["baton", "-q", "health", "--server", "127.0.0.1:50051", "--timeout", "3"]
ENTRYPOINT ["baton", "serve"]
# The bundle is mounted (or baked, below) at /models/bundle. Every port listens on every interface in a container, so
# calls need the bearer token in /etc/baton/auth/token (mount it: docs/deploy.md), on gRPC and HTTP alike; health
# checks and the page itself need none. The server will not start without that file; for TLS as well (both
# protocols), add --tls-cert and --tls-key.
CMD ["/models/bundle", "--host", "0.0.0.0", "--port", "50051", "--http-port", "8000", "--metrics-host", "0.0.0.0", "--metrics-port", "9464", "--grace-s", "20", "--auth-token-file", "/etc/baton/auth/token"]

# ---- serve-bundle: the runtime image with one bundle inside (for Kubernetes without a volume) ---------------------
FROM serve AS serve-bundle
ARG BUNDLE=bundles/demo
COPY --chown=10001 ${BUNDLE} /models/bundle
