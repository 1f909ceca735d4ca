"""Chunk vectors: stored as float16 in SQLite, scored with numpy over a memory-mapped matrix.

Each vector is kept unit-length as float16 (half of float32's bytes; on SciFact the nDCG@10 cost
is in docs/memory.md), older float32 rows are still read. For search, the vectors of the current
model are written once into a float32 matrix file beside the database and memory-mapped: the
pages are shared with the OS cache, not copied into the daemon. Up to FULL_SCAN_ROWS rows a
query is scored against every row (BLAS matrix-vector product); above, the scan would pass the
latency budget (30 ms p99 at 1M rows does not hold on two cores: 1.5 GB to read per query), so
only the BM25 candidates are re-scored by their vectors. sqlite-vec is not used: it scans the
same way, and Python's sqlite3 module cannot load extensions on every build. Without numpy,
vectors are scanned in plain Python.
"""

from __future__ import annotations

import math
import os
import sqlite3
import struct
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from localresearch.store import Database

# A full scan reads 1.5 KB per 384-dimension row: 0.76 ms per 10,000 rows measured here on a
# quiet machine (docs/memory.md), so ~15 ms at 200,000 rows; above, candidates are re-scored
# (700 rows, well under a millisecond). scripts/bench_vectors.py measures both.
FULL_SCAN_ROWS = 200_000
_BLOCK_ROWS = 1 << 16

_UNSET: Any = object()
_np: Any = _UNSET  # numpy, None when absent; imported on first use (it costs ~0.15 s at start-up)


def single_threaded_blas() -> None:
    """Before numpy's first import: one BLAS thread. A query's product with the matrix is
    small; OpenBLAS's threads spin after each call and, with other work on the cores, made a
    5,000-row product p90 12 ms against 0.6 ms on one thread (50,000 rows: p50 29 vs 16 ms),
    same results (numpy's wheels use OpenBLAS). A user's own setting wins."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _numpy() -> Any:
    """numpy if installed (a faster cosine top-k), else None."""
    global _np
    if _np is _UNSET:
        single_threaded_blas()
        try:
            import numpy
        except ImportError:  # pragma: no cover - exercised when numpy is absent
            _np = None
        else:
            _np = numpy
    return _np


def unit(vector: Sequence[float]) -> list[float]:
    """The vector scaled to length 1 (cosine similarity is then a dot product)."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def pack(vector: Sequence[float]) -> bytes:
    """A unit-length float16 blob (little-endian), 2 bytes a dimension."""
    return struct.pack(f"<{len(vector)}e", *unit(vector))


def unpack(blob: bytes, dim: int) -> list[float]:
    """A stored vector: float16 (2 bytes a dimension) or, from older versions, float32."""
    if len(blob) == 2 * dim:
        return list(struct.unpack(f"<{dim}e", blob))
    return list(struct.unpack(f"<{dim}f", blob))


def _blocks(np: Any, blobs: list[bytes], dim: int) -> Iterator[Any]:
    """The blobs as float32 matrices of up to _BLOCK_ROWS rows (float16 rows widened)."""
    for start in range(0, len(blobs), _BLOCK_ROWS):
        part = blobs[start : start + _BLOCK_ROWS]
        if all(len(b) == 2 * dim for b in part):
            half = np.frombuffer(b"".join(part), dtype="<f2").reshape(len(part), dim)
            yield half.astype(np.float32)
            continue
        out = np.empty((len(part), dim), dtype=np.float32)
        for i, blob in enumerate(part):
            out[i] = np.frombuffer(blob, dtype="<f2" if len(blob) == 2 * dim else "<f4")
        yield out


class VectorIndex:
    """The vectors of one model, for cosine top-k (a full scan) or re-scoring given chunks."""

    def __init__(
        self, ids: list[int], blobs: list[bytes], dim: int, matrix_file: Path | None = None
    ) -> None:
        self.ids = ids
        self.dim = dim
        self._matrix: Any = None
        self._rows: list[list[float]] = []
        self._position: dict[int, int] = {}
        np = _numpy()
        if np is not None and ids:
            if matrix_file is not None:
                self._matrix = _memory_mapped(np, _blocks(np, blobs, dim), matrix_file, dim)
            else:
                self._matrix = np.concatenate(list(_blocks(np, blobs, dim)))
            # Row of each chunk id in a flat array (chunk ids are dense: SQLite's rowids): a
            # candidate is one array read, where a dict of 1M ids cost ~8 us a lookup in cache
            # misses on a busy machine.
            # Sparse ids (a table of more than 8 slots a row): a binary search instead.
            id_array = self._id_array = np.asarray(ids, dtype=np.int64)
            self._sorted_ids: Any = None
            if int(id_array.max()) + 2 <= 8 * len(ids) + 65_536 and int(id_array.min()) >= 0:
                self._row_of = np.full(int(id_array.max()) + 2, -1, dtype=np.int32)
                self._row_of[id_array] = np.arange(len(ids), dtype=np.int32)
            else:
                order = np.argsort(id_array, kind="stable")
                self._sorted_ids, self._sorted_rows = id_array[order], order
        else:
            self._rows = [unpack(blob, dim) for blob in blobs]
            self._position = {chunk_id: i for i, chunk_id in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def scans(self) -> bool:
        """Whether a query is scored against every row (else only given candidates)."""
        return len(self.ids) <= FULL_SCAN_ROWS

    def _query(self, query: Sequence[float]) -> list[float] | None:
        return unit(query) if self.ids and len(query) == self.dim else None

    def top(self, query: Sequence[float], k: int) -> list[tuple[int, float]]:
        """The k chunk ids most similar to `query` (cosine > 0), best first, with their cosine."""
        q = self._query(query)
        if q is None or k <= 0:
            return []
        k = min(k, len(self.ids))
        if self._matrix is not None:
            np = _numpy()
            scores = self._matrix @ np.asarray(q, dtype=np.float32)
            best = np.argpartition(-scores, k - 1)[:k]
            best = best[np.argsort(-scores[best], kind="stable")]
            best = best[scores[best] > 0]  # one vectorised step each, not a loop over k rows
            return list(zip(self._id_array[best].tolist(), scores[best].tolist(), strict=True))
        scored = [
            (sum(a * b for a, b in zip(row, q, strict=True)), i) for i, row in enumerate(self._rows)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [(self.ids[i], score) for score, i in scored[:k] if score > 0]

    def score(self, query: Sequence[float], chunk_ids: Sequence[int]) -> list[tuple[int, float]]:
        """Cosine of `query` with each given chunk that has a vector (> 0), best first."""
        if self._matrix is not None:
            return self._score_matrix(query, chunk_ids) if chunk_ids else []
        q = self._query(query)
        if q is None or not chunk_ids:
            return []
        rows = [(cid, self._position[cid]) for cid in chunk_ids if cid in self._position]
        values = [sum(a * b for a, b in zip(self._rows[r], q, strict=True)) for _, r in rows]
        scored = [(cid, float(v)) for (cid, _), v in zip(rows, values, strict=True) if v > 0]
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored

    def _score_matrix(
        self, query: Sequence[float], chunk_ids: Sequence[int]
    ) -> list[tuple[int, float]]:
        """`score` in numpy: every step is one vectorised call (700 candidates: ~1 ms)."""
        np = _numpy()
        if len(query) != self.dim:
            return []
        q = np.asarray(query, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        wanted = np.fromiter(chunk_ids, dtype=np.int64, count=len(chunk_ids))
        if self._sorted_ids is None:
            rows = self._row_of[np.clip(wanted, 0, len(self._row_of) - 1)]
            known = (rows >= 0) & (wanted >= 0) & (wanted < len(self._row_of))
        else:
            found = np.searchsorted(self._sorted_ids, wanted)
            found = np.minimum(found, len(self._sorted_ids) - 1)
            known = self._sorted_ids[found] == wanted
            rows = self._sorted_rows[found]
        wanted, rows = wanted[known], rows[known]
        # Rows gathered in file order: the mapped pages are walked forward, once each.
        order = np.argsort(rows, kind="stable")
        wanted = wanted[order]
        values = self._matrix[rows[order]] @ q
        positive = values > 0
        wanted, values = wanted[positive], values[positive]
        best = np.lexsort((wanted, -values))
        return list(zip(wanted[best].tolist(), values[best].tolist(), strict=True))


def _memory_mapped(np: Any, blocks: Iterator[Any], path: Path, dim: int) -> Any:
    """The blocks written to `path` (replaced atomically) and mapped read-only from there:
    the whole matrix is never held in the daemon's own memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    rows = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for block in blocks:
                fh.write(block.tobytes())
                rows += len(block)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # A reader still mapping the old file keeps its pages; the new file is a new inode.
    return np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))


def load_index(db: Database, model: str, matrix_file: Path | None = None) -> VectorIndex:
    """Every vector of `model` (call from a worker thread), memory-mapped from `matrix_file`."""

    def read(conn: sqlite3.Connection) -> tuple[list[int], list[bytes], int]:
        dims = conn.execute(
            "SELECT dim, count(*) AS n FROM memory_vectors WHERE model = ? GROUP BY dim"
            " ORDER BY n DESC LIMIT 1",
            (model,),
        ).fetchone()
        if dims is None:
            return [], [], 0
        rows = conn.execute(
            "SELECT chunk_id, vector FROM memory_vectors WHERE model = ? AND dim = ?"
            " ORDER BY chunk_id",
            (model, int(dims[0])),
        ).fetchall()
        return [int(r[0]) for r in rows], [bytes(r[1]) for r in rows], int(dims[0])

    ids, blobs, dim = db.read_sync(read)
    return VectorIndex(ids, blobs, dim, matrix_file)


def matrix_file_for(data_dir: Path, model: str) -> Path:
    """Where the memory-mapped matrix of `model` lives (a cache: rebuilt from SQLite)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return data_dir / "vectors" / f"{safe}.f32"
