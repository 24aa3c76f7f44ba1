"""Tools around the runtime: `baton bench` (latency and throughput) and `baton evaluate` (quality of a bundle)."""

__all__: list[str] = []
