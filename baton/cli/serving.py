"""Commands that run or probe a server: serve, health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from baton.cli._app import app
from baton.cli._options import Opt, _tls
from baton.serving.config import DEFAULT_METRICS_PORT

__all__ = ["health", "serve"]


_TUNING = "Batching and threads"
_LIMITS = "Limits"
_SECURITY = "Security"
_REPO = "Model repository"


@app.command()
def serve(
    bundle: Annotated[
        str | None,
        typer.Argument(help="A bundle, or a model repository: a folder of bundles or of numbered versions of them."),
    ] = None,
    config: Annotated[Path | None, Opt(help="YAML file with the same keys as these flags (flags win).")] = None,
    host: Annotated[str | None, Opt(help="Bind address.")] = None,
    port: Annotated[int | None, Opt(help="gRPC port; 0 picks a free one.")] = None,
    http: Annotated[
        bool | None, Opt("--http/--no-http", help="Serve HTTP too: OIP v2 REST, /v1 JSON routes, the page at /.")
    ] = None,
    http_port: Annotated[int | None, Opt(help="HTTP port; 0 picks a free one, printed at start.")] = None,
    device: Annotated[str | None, Opt(help="auto, cpu or cuda.")] = None,
    variant: Annotated[str | None, Opt(help="fp32, int8 or fp16 (default: the best for the device).")] = None,
    model_name: Annotated[
        str | None, Opt(help="A lone bundle's model name (default: its manifest's; a repository's: its folders').")
    ] = None,
    version_policy: Annotated[
        str | None, Opt(help="Versions that serve: latest, latest:N, all or specific:N,M.", rich_help_panel=_REPO)
    ] = None,
    model_control: Annotated[
        str | None,
        Opt(
            help="none (load at start), explicit (KServe repository load/unload calls) or poll (also rescan).",
            rich_help_panel=_REPO,
        ),
    ] = None,
    poll_s: Annotated[float | None, Opt(help="Seconds between rescans (poll).", rich_help_panel=_REPO)] = None,
    max_models: Annotated[
        int | None, Opt(help="Loaded model versions at most; a load past it is refused.", rich_help_panel=_REPO)
    ] = None,
    metrics_port: Annotated[
        int | None,
        Opt(
            help=f"Prometheus port; 0 picks a free one. When another server holds {DEFAULT_METRICS_PORT}, the "
            "default, a free one is taken with a warning."
        ),
    ] = None,
    metrics_host: Annotated[str | None, Opt(help="Prometheus bind address.")] = None,
    grace_s: Annotated[float | None, Opt(help="Seconds to finish accepted requests on SIGTERM.")] = None,
    threads: Annotated[
        int | None, Opt(help="onnxruntime intra-op threads (default: all cores).", rich_help_panel=_TUNING)
    ] = None,
    workers: Annotated[
        int | None,
        Opt(
            help="Batches run at once, each on its share of the threads (default: 2 on CPU with 2+ threads).",
            rich_help_panel=_TUNING,
        ),
    ] = None,
    spin: Annotated[
        bool | None, Opt("--spin/--no-spin", help="onnxruntime spin-waiting (default: on).", rich_help_panel=_TUNING)
    ] = None,
    max_batch_tokens: Annotated[int | None, Opt(help="Padded tokens per batch.", rich_help_panel=_TUNING)] = None,
    max_batch_size: Annotated[int | None, Opt(help="Texts per batch.", rich_help_panel=_TUNING)] = None,
    max_queue_delay_ms: Annotated[
        float | None, Opt(help="Wait this long for a fuller batch when idle.", rich_help_panel=_TUNING)
    ] = None,
    min_second_batch: Annotated[
        int | None,
        Opt(
            help="Texts that must wait before a second batch runs beside one; fewer wait and go wide.",
            rich_help_panel=_TUNING,
        ),
    ] = None,
    wide_batches: Annotated[
        str | None,
        Opt(
            help="When a lone batch uses every thread: idle (only under serial traffic) or alone (whenever nothing "
            "else runs or waits).",
            rich_help_panel=_TUNING,
        ),
    ] = None,
    min_batch_fill: Annotated[
        float | None,
        Opt(
            help="A batch grows only while its texts fill this share of its padded tokens (default: 0.9 on CPU, 0 on "
            "CUDA).",
            rich_help_panel=_TUNING,
        ),
    ] = None,
    worker_nice: Annotated[
        int | None,
        Opt(
            help="Inference threads' niceness, 0-19, so the event loop answers first (default: 10 on Linux, else 0).",
            rich_help_panel=_TUNING,
        ),
    ] = None,
    event_loop: Annotated[
        str | None, Opt(help="auto (uvloop when installed), asyncio or uvloop.", rich_help_panel=_TUNING)
    ] = None,
    max_queue_items: Annotated[
        int | None, Opt(help="Queued texts before RESOURCE_EXHAUSTED.", rich_help_panel=_LIMITS)
    ] = None,
    max_texts_per_request: Annotated[int | None, Opt(help="Texts per request.", rich_help_panel=_LIMITS)] = None,
    max_text_chars: Annotated[int | None, Opt(help="Longer texts are rejected.", rich_help_panel=_LIMITS)] = None,
    max_request_tokens: Annotated[
        int | None,
        Opt(help="Model tokens one request may cost, every window of every text counted.", rich_help_panel=_LIMITS),
    ] = None,
    max_message_bytes: Annotated[
        int | None, Opt(help="Largest request message in bytes, refused before decoding.", rich_help_panel=_LIMITS)
    ] = None,
    max_concurrent_streams: Annotated[
        int | None,
        Opt(
            help="Calls one connection may have open at the server; more wait client-side (default: no limit).",
            rich_help_panel=_LIMITS,
        ),
    ] = None,
    http_body_timeout_s: Annotated[
        float | None,
        Opt(help="Seconds an HTTP request's head, then its body, may take to arrive (408).", rich_help_panel=_LIMITS),
    ] = None,
    http_keep_alive_s: Annotated[
        float | None, Opt(help="Seconds an idle HTTP connection is kept open.", rich_help_panel=_LIMITS)
    ] = None,
    http_max_connections: Annotated[
        int | None, Opt(help="HTTP connections and requests in flight before 503.", rich_help_panel=_LIMITS)
    ] = None,
    max_pending_calls: Annotated[
        int | None,
        Opt(help="Calls grpc may hold before the server takes them; more are refused.", rich_help_panel=_LIMITS),
    ] = None,
    tls_cert: Annotated[str | None, Opt(help="PEM server certificate.", rich_help_panel=_SECURITY)] = None,
    tls_key: Annotated[str | None, Opt(help="PEM server key.", rich_help_panel=_SECURITY)] = None,
    tls_client_ca: Annotated[
        str | None, Opt(help="PEM CA for client certificates (mTLS).", rich_help_panel=_SECURITY)
    ] = None,
    auth_token_file: Annotated[
        str | None, Opt(help="File holding the bearer token clients must send.", rich_help_panel=_SECURITY)
    ] = None,
) -> None:
    """Serve a bundle with dynamic batching: gRPC (domain API, KServe v2, health, reflection) and HTTP (KServe v2
    REST, /v1 JSON routes, a page at /) in one process, with Prometheus metrics."""
    overrides = {k: v for k, v in locals().items() if k != "config"}
    from baton._config import load_config
    from baton.serving.config import ServeConfig
    from baton.serving.run import serve_forever

    cfg = load_config(ServeConfig, config, overrides)
    code = serve_forever(cfg)
    if code:
        raise typer.Exit(code)


@app.command()
def health(
    target: Annotated[str | None, typer.Argument(hidden=True)] = None,  # the first release's positional address
    server: Annotated[str, Opt(help="HOST:PORT of a running `baton serve`.")] = "127.0.0.1:50051",
    service: Annotated[str, Opt(help="A service name; empty: the whole server.")] = "",
    timeout: Annotated[float, Opt(help="Seconds to wait for the answer.")] = 3.0,
    tls_ca: Annotated[Path | None, Opt(help="PEM CA that signed the server's certificate (TLS).")] = None,
) -> None:
    """Probe a server's grpc.health.v1 status: exit 0 when SERVING, 1 otherwise (a container HEALTHCHECK)."""
    from baton.serving.client import Client, ClientError

    address = target or server
    try:
        with Client(address, tls=_tls(tls_ca, None, None), timeout=timeout) as client:
            status = client.health(service)
    except ClientError as exc:
        typer.echo(f"{address}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{address}: {status}")
    if status != "SERVING":
        raise typer.Exit(1)
