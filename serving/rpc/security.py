"""Who may call: TLS files checked before binding, and bearer-token auth (health and reflection exempt)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from baton.errors import ConfigError
from baton.serving.config import ServeConfig
from baton.serving.rpc.common import abort

__all__ = ["AuthInterceptor", "credentials", "open_to_anyone"]

_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def open_to_anyone(cfg: ServeConfig) -> bool:
    """Whether the server listens beyond this host with neither a bearer token nor client certificates: anyone who
    reaches the port may call it (the server warns; the image and manifests wire a token)."""
    import ipaddress

    host = cfg.host.strip("[]")
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    return not local and not cfg.auth_token_file and not cfg.tls_client_ca


def _discard(data: bytes) -> None:
    return None


def _check_tls(cfg: ServeConfig) -> None:
    """Load the PEM files the way a TLS stack would, so a bad key or cert is named (gRPC says only "Failed to bind")."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"--tls-cert {cfg.tls_cert} / --tls-key {cfg.tls_key}: not a usable pair ({exc})") from exc
    if cfg.tls_client_ca:
        try:
            context.load_verify_locations(cafile=str(cfg.tls_client_ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"--tls-client-ca {cfg.tls_client_ca}: not a PEM certificate ({exc})") from exc


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer <token>` (compared in constant time); health and reflection are exempt."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())  # type: ignore[attr-defined]
        given = metadata.get("authorization", "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given_bytes, self._expected):
            return handler
        message = "missing bearer token" if not given else "invalid bearer token"

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, message)

        async def deny_stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, message)

        # The refused call's message is never decoded: an unauthenticated client cannot make the server parse 4 MB.
        kwargs = {"request_deserializer": _discard, "response_serializer": handler.response_serializer}
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny_stream, **kwargs)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny_stream, **kwargs)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny, **kwargs)
        return grpc.unary_unary_rpc_method_handler(deny, **kwargs)


def credentials(cfg: ServeConfig) -> grpc.ServerCredentials | None:
    """The server's TLS credentials (mutual TLS with --tls-client-ca), or None for a plaintext port."""
    if not (cfg.tls_cert and cfg.tls_key):
        return None
    _check_tls(cfg)
    client_ca = Path(cfg.tls_client_ca).read_bytes() if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
