"""Output files that are complete or absent: rows go to a hidden temp file beside the target, which is renamed over
it only once every row is written and synced. A job killed midway leaves no partial output under the final name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from baton._io import publish

__all__ = ["Sink"]


class Sink:
    """One output file (`parquet` or `jsonl`) written chunk by chunk; `commit()` publishes it, `abort()` drops it."""

    def __init__(self, target: Path, fmt: str, schema: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        os.close(fd)
        self.target, self.fmt, self.schema, self.tmp = target, fmt, schema, Path(tmp)
        self.rows = 0
        self._writer: Any = None
        self._handle: IO[str] | None = None
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.tmp, schema)
        else:
            self._handle = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 (closed in commit/abort)

    def write(self, table: Any) -> None:
        if self._writer is not None:
            self._writer.write_table(table)
        else:
            assert self._handle is not None
            for row in table.to_pylist():
                self._handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self.rows += table.num_rows

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        else:
            assert self._handle is not None
            self._handle.close()
        publish(self.tmp, self.target)

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            elif self._handle is not None:
                self._handle.close()
        finally:
            self.tmp.unlink(missing_ok=True)
