"""Binary quantization on a kept matching gallery: an HNSW graph over 512-bit sign codes, re-ranked in float32.

pgvector's recipe: an expression index on binary_quantize(embedding)::bit(512) with bit_hamming_ops,
the ef_search nearest codes by Hamming distance read through it, then ordered by the float32
cosine. Run on a gallery that `bench/matching.py --keep` left (its server in --out), against the
same queries and exact search as there; the index is built beside the gallery's own and dropped
at the end.

    .venv/bin/python bench/matching.py --sizes 100k --out /tmp/m1m --keep
    .venv/bin/python bench/binary_quantization.py --size 100k --out /tmp/m1m --m 16 --ef-construction 64

Measured (bench/RESULTS.md, matching): recall holds at 100k and collapses at 1M.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.matching import ExactSearch, Gallery, kept_gallery_url, log, parse_sizes, percentiles
from facerec.db import schema

INDEX = "sample_face_vectors_embedding_bits"
CANDIDATES_THEN_RERANK = f"""
    SELECT sample_id FROM (
        SELECT sample_id, embedding FROM {schema.TABLE}
        ORDER BY binary_quantize(embedding)::bit(512) <~> binary_quantize(%(vector)s)::bit(512)
        LIMIT %(candidates)s
    ) nearest_codes
    ORDER BY embedding <=> %(vector)s LIMIT 1
"""


def build(conn: psycopg.Connection, m: int, ef_construction: int) -> dict:
    conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
    started = time.perf_counter()
    conn.execute(
        f"CREATE INDEX {INDEX} ON {schema.TABLE} USING hnsw ((binary_quantize(embedding)::bit(512)) bit_hamming_ops)"
        f" WITH (m = {m}, ef_construction = {ef_construction})"
    )
    seconds = round(time.perf_counter() - started, 1)
    size = conn.execute("SELECT pg_relation_size(%s)", (INDEX,)).fetchone()[0]
    return {"m": m, "ef_construction": ef_construction, "build_s": seconds, "index_mb": round(size / 2**20, 1)}


def timed(conn: psycopg.Connection, ef: int, queries: np.ndarray, truth: list[str], warm_up: np.ndarray) -> dict:
    conn.execute(f"SET hnsw.ef_search = {ef}")
    for query in warm_up:
        conn.execute(CANDIDATES_THEN_RERANK, {"vector": query, "candidates": ef}).fetchall()
    seconds, hits = [], 0
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        row = conn.execute(CANDIDATES_THEN_RERANK, {"vector": query, "candidates": ef}).fetchone()
        seconds.append(time.perf_counter() - started)
        hits += row is not None and row[0] == expected
    p50, p95 = percentiles(seconds)
    return {"ef_search": ef, "p50_ms": p50, "p95_ms": p95, "recall_at_1": round(hits / len(queries), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=lambda s: parse_sizes(s)[0], required=True, help="a kept gallery, e.g. 1m")
    parser.add_argument("--out", type=Path, required=True, help="the --out of the matching run that kept it")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef", type=lambda s: [int(v) for v in s.split(",")], default=[40, 100, 200])
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args(argv)
    gallery = Gallery(args.size, args.photos)
    _, queries = gallery.queries(args.queries, salt=1)
    _, warm_up = gallery.queries(20, salt=2)
    exact = ExactSearch(queries)
    for identity, vectors in gallery.chunks():
        exact.update(identity, vectors)
    url = kept_gallery_url(args.out, f"bench_matching_{args.size}", args.size)
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        log(f"{args.size}: building the binary index (m = {args.m}, ef_construction = {args.ef_construction})")
        report = {"size": args.size, **build(conn, args.m, args.ef_construction), "timings": []}
        for ef in args.ef:
            report["timings"].append(timed(conn, ef, queries, exact.ids(), warm_up))
            log(json.dumps(report["timings"][-1]))
        conn.execute(f"DROP INDEX {INDEX}")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
