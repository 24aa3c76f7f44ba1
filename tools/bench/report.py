"""The report: markdown, plots, the saved JSON, and the checks on its counts."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from baton._io import write_json_atomic
from baton.errors import BatonError
from baton.tools.bench.accounting import environment

__all__ = ["ceiling_batch_sizes", "check_counts", "cpu_per_text", "markdown", "mean_ceiling", "plot", "save"]

logger = logging.getLogger(__name__)


def ceiling_batch_sizes(ceiling: dict[str, Any]) -> str:
    """The best setting of the ceiling, as "16" or "8 side by side" or, when the two measurements disagree,
    "16 / 8 side by side"."""
    best = (ceiling[k].get("best_setting", ceiling[k]["best_batch_size"]) for k in ("before", "after"))
    return " / ".join(str(setting) for setting in dict.fromkeys(best))


def mean_ceiling(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One ceiling from the measurements before and after the load (both kept): the mean of the two."""

    def mean(key: str) -> float | None:
        values = [m[key] for m in (before, after) if m.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "variant": before["variant"],
        "best_batch_size": before["best_batch_size"],
        "best_setting": before.get("best_setting", before["best_batch_size"]),
        "texts_per_s": mean("texts_per_s"),
        "batch1_p50_ms": mean("batch1_p50_ms"),
        "before": before,
        "after": after,
    }


# ---- output ---------------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    mode = report["mode"]
    if mode == "inprocess":
        lines += [
            "| backend | batch | bucket | texts/s | p50 ms | p99 ms | tokenize texts/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in report["results"]:
            lines.append(
                f"| {r['backend']} | {r['batch_size']} | {r['bucket']} | {r['texts_per_s']:.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r.get('tokenize_texts_per_s', float('nan')):.0f} |"
            )
        return "\n".join(lines)
    grpc_part = report["grpc"] if mode == "serve" else report
    lines += [
        "| load | texts/s | p50 ms | p99 ms | errors | mean batch | mean queue ms | client CPU s | server CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in grpc_part["results"]:
        load = f"{r['concurrency']} clients" if r["mode"] == "closed" else f"{r['rate']:.0f} req/s"
        mb = f"{r['mean_batch_size']:.1f}" if r.get("mean_batch_size") else "-"
        mq = f"{r['mean_queue_ms']:.2f}" if r.get("mean_queue_ms") is not None else "-"
        lines.append(
            f"| {load} | {r['texts_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{sum(r['errors'].values())} | {mb} | {mq} | {r['client_cpu_s']:.1f} | "
            f"{r.get('server_cpu_s', float('nan')):.1f} |"
        )
    echo = grpc_part.get("load_generator_ceiling")
    if echo:
        lines.append(
            f"\nload generator ceiling (echo server, {echo['concurrency']} clients): "
            f"{echo['texts_per_s']:.0f} texts/s, p50 {echo['p50_ms']:.2f} ms; "
            f"gRPC round trip with no work (echo, 1 client): p50 {echo['one_client_p50_ms']:.2f} ms"
        )
    if mode == "serve":
        c = report["ceiling"]
        lines.append(
            f"in-process ceiling ({c['variant']}, sorted batches of {ceiling_batch_sizes(c)}; mean of "
            f"{c['before']['texts_per_s']:.0f} before and {c['after']['texts_per_s']:.0f} after the load): "
            f"{c['texts_per_s']:.0f} texts/s; batch-1 p50 {c['batch1_p50_ms']:.2f} ms"
        )
        lines.append(f"  (how: {c['before'].get('how', 'sorted batches through the engine')})")
        one = next((r for r in grpc_part["results"] if r["mode"] == "closed" and r["concurrency"] == 1), None)
        if one is not None and echo and c.get("batch1_p50_ms") is not None:
            rest = one["p50_ms"] - c["batch1_p50_ms"] - echo["one_client_p50_ms"]
            lines.append(
                f"1 client: p50 {one['p50_ms']:.2f} ms = in-process batch 1 {c['batch1_p50_ms']:.2f} ms + gRPC round "
                f"trip {echo['one_client_p50_ms']:.2f} ms + the server's own {rest:+.2f} ms (target: at most +0.30)"
            )
        top = next(k for k in report if k.startswith("ratio_at_"))
        lines.append(
            f"server / ceiling: {report[top]:.2f} at {top.removeprefix('ratio_at_')} clients, "
            f"best {report['ratio_best']:.2f}"
        )
        lines += cpu_per_text(report)
    return "\n".join(lines)


def cpu_per_text(report: dict[str, Any]) -> list[str]:
    """Where each served text's CPU goes, per closed-loop level, against what the ceiling spends per text (every
    core busy for 1 / ceiling seconds): the server's own process and the load generator's, over the measured
    window. On one machine the two share the cores, so the load generator's share is taken from the server. Then,
    where the echo ran, what a no-work echo server spends per call: gRPC's own cost."""
    cores, ceiling = report.get("cores"), report["ceiling"].get("texts_per_s")
    rows = [r for r in report["grpc"]["results"] if r["mode"] == "closed" and r.get("server_cpu_s") is not None]
    if not cores or not ceiling or not rows:
        return []
    cells = []
    for r in rows:
        texts = r["texts_per_s"] * r["elapsed_s"]
        if texts:
            cells.append(
                f"{r['concurrency']} clients: server {r['server_cpu_s'] / texts * 1e3:.2f}, load generator "
                f"{r['client_cpu_s'] / texts * 1e3:.2f}"
            )
    lines = [f"CPU per text, ms (the ceiling spends {cores / ceiling * 1e3:.2f} on {cores} cores): " + "; ".join(cells)]
    echo = report["grpc"].get("load_generator_ceiling") or {}
    top_calls = echo.get("requests_per_s", 0.0) * echo.get("elapsed_s", 0.0)
    if echo.get("one_client_server_cpu_s") is not None and echo.get("one_client_calls") and top_calls:
        one = echo["one_client_server_cpu_s"] / echo["one_client_calls"] * 1e3
        top = echo["server_cpu_s"] / top_calls * 1e3
        lines.append(
            f"a no-work echo server's CPU per call, ms: {one:.2f} at 1 client, {top:.2f} at {echo['concurrency']} "
            "clients"
        )
    return lines


def _save_plot(plt: Any, fig: Any, ax: Any, labels: tuple[str, str, str], path: Path) -> Path:
    """Log-2 x axis, axis labels and title, legend; write the PNG and close the figure."""
    xlabel, ylabel, title = labels
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot(report: dict[str, Any], out_prefix: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    def named(suffix: str) -> Path:
        return out_prefix.with_name(f"{out_prefix.name}_{suffix}.png")

    if report["mode"] == "inprocess":
        fig, ax = plt.subplots(figsize=(6, 4))
        for backend in sorted({r["backend"] for r in report["results"]}):
            rows = [r for r in report["results"] if r["backend"] == backend and r["bucket"] in ("all", "64tok")]
            rows = rows or [r for r in report["results"] if r["backend"] == backend]
            ax.plot([r["batch_size"] for r in rows], [r["p50_ms"] / r["batch_size"] for r in rows], "o-", label=backend)
        labels = ("batch size", "p50 ms per text", "in-process latency per text vs batch size")
        return [_save_plot(plt, fig, ax, labels, named("inprocess"))]
    grpc_part = report["grpc"] if report["mode"] == "serve" else report
    rows = [r for r in grpc_part["results"] if r["mode"] == "closed"]
    if not rows:
        return []
    levels = [r["concurrency"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        ax.plot(levels, [r[key] for r in rows], "o-", label=key.removesuffix("_ms"))
    latency = _save_plot(
        plt, fig, ax, ("concurrent clients", "latency (ms)", "gRPC latency vs concurrency"), named("latency")
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(levels, [r["texts_per_s"] for r in rows], "o-", label="server")
    if report["mode"] == "serve":
        ax.axhline(report["ceiling"]["texts_per_s"], color="gray", linestyle="--", label="in-process ceiling")
    throughput = _save_plot(
        plt, fig, ax, ("concurrent clients", "texts/s", "gRPC throughput vs concurrency"), named("throughput")
    )
    return [latency, throughput]


def save(report: dict[str, Any], output: Path | None, extra_env: dict[str, Any] | None = None) -> Path:
    if output is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        output = Path("bench-results") / f"{report['mode']}-{stamp}.json"
    report = {"environment": environment(extra_env), **report}
    write_json_atomic(output, report)
    report["plots"] = [str(p) for p in plot(report, output.with_suffix(""))]
    write_json_atomic(output, report)
    return output


def check_counts(report: dict[str, Any]) -> None:
    """Every request sent is answered or counted as an error."""
    grpc_part = report.get("grpc", report)
    for r in grpc_part.get("results", []):
        if "requests_sent" in r and r["requests_sent"] != r["answered"] + sum(r["errors"].values()):
            lost = r["requests_sent"] - r["answered"] - sum(r["errors"].values())
            raise BatonError(
                f"load generator bug: at {r.get('concurrency', r.get('rate'))} the counts do not add up "
                f"({r['requests_sent']} sent, {r['answered']} answered, {sum(r['errors'].values())} errors: "
                f"{lost} unaccounted); the results were not saved"
            )
