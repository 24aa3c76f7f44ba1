"""What an element flood costs the server's event loop, decoded whole vs refused by serving/wire.py's bounded walk.

    python scripts/wire_bounds.py [--elements 2000000]

A Classify message of N empty texts (2 bytes each: 4 MB for two million) is what the old server decoded before any
limit or token was checked. Prints the decode time and peak memory, and the time the bounded deserializer takes to
refuse it (median of 5). Figures: docs/benchmarks.md, "Trust under abuse".
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from baton.serving.v1 import classifier_pb2 as pb
from baton.serving.wire import Malformed, bounded, count_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements", type=int, default=2_000_000)
    args = parser.parse_args()
    flood = b"\x0a\x00" * args.elements
    refuse = bounded(pb.ClassifyRequest.FromString, lambda data: count_fields(data, 2 * 256 + 8))
    spent = []
    for _ in range(5):
        started = time.perf_counter()
        assert isinstance(refuse(flood), Malformed)
        spent.append(time.perf_counter() - started)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    texts = list(pb.ClassifyRequest.FromString(flood).texts)
    decoded = time.perf_counter() - started
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(
        f"{len(flood) / 2**20:.1f} MiB, {len(texts)} empty texts: decoded whole in {decoded * 1e3:.0f} ms "
        f"(+{grown:.0f} MiB peak); refused by the bounded walk in {statistics.median(spent) * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
