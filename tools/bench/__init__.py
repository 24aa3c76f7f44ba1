"""`baton bench`: in-process backends, the gRPC server under closed/open-loop load, and their ratio.

Every figure of one invocation is measured in that invocation (these machines drift, so compare side by side).
Split by job: `options` (what is sent), `inprocess` (backends and the sorted ceiling), `loadgen` (closed and open
loops, the echo ceiling, a started server), `accounting` (percentiles, CPU, environment, server metrics), `report`.
"""

from baton.tools.bench.inprocess import bench_inprocess, inprocess_ceiling
from baton.tools.bench.loadgen import Load, StartedServer, bench_grpc, bench_serve, started_server
from baton.tools.bench.options import BenchOptions, PairText, load_texts, pairs_of
from baton.tools.bench.report import ceiling_batch_sizes, check_counts, cpu_per_text, markdown, plot, save

__all__ = [
    "BenchOptions",
    "Load",
    "PairText",
    "StartedServer",
    "bench_grpc",
    "bench_inprocess",
    "bench_serve",
    "ceiling_batch_sizes",
    "check_counts",
    "cpu_per_text",
    "inprocess_ceiling",
    "load_texts",
    "markdown",
    "pairs_of",
    "plot",
    "save",
    "started_server",
]
