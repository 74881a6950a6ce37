"""Matching speed and recall: our HNSW query against the original system's way, gallery by gallery.

    .venv/bin/python bench/matching.py --sizes 1k,10k            # minutes
    mkdir -p bench/out
    nohup .venv/bin/python bench/matching.py --sizes 1k,10k,100k,1m > bench/out/matching-1m.log 2>&1 &

Galleries are clustered synthetic identities, unit 512-d float32: --photos vectors per identity
around its centre (two photos of one identity: cosine ~0.55), identities in groups of
--look-alikes around a group's centre (two look-alikes: ~0.14, at most ~0.35), groups in random
directions (two strangers: 0 ± 0.045), roughly as ArcFace embeddings of real faces are spread.
With --look-alikes 1 (no such structure, every identity in a random direction) the graph has
nothing to steer by and recall drops: a worst case, not what face embeddings look like. A query is
a fresh noisy vector of a random enrolled identity. recall@1 is the share of queries whose first match has the
sample id of the exact nearest vector (brute force in NumPy).

Ours: rows COPYed into the real schema (SampleStore.bulk_load) with the HNSW index dropped, the
index built after (build time, sizes and the build backend's peak memory recorded), then one
SampleStore.match call per query, as a one-face /face-recognition does, at each --ef.
The original: vectors stored as JSON text; every query reads the whole table and computes the
cosine in a Python loop. It runs where its projected time fits --baseline-budget-s, else its
time is extrapolated linearly from the largest gallery it ran on, and marked so.

--index ivfflat times an IVFFlat index (--lists, at each --probes) instead, in a database of its
own (bench_matching_SIZE_ivfflat; with --reuse, a kept gallery's index is built again as asked).

Everything runs on an embedded PostgreSQL of its own in --out (raised maintenance_work_mem,
parallel build workers and shared_buffers: the project's own server keeps its defaults).
Its shared_buffers sit in huge pages where the kernel has them reserved (PostgreSQL's default
huge_pages = try; --huge-pages off to compare), which took 5 to 22% (median 16%) off the 1M
gallery's queries (bench/RESULTS.md); the report says whether it got them. Reserve them first,
as root: `sysctl -w vm.nr_hugepages=1700` covers the 3 GB shared_buffers (3.2 GB of shared memory).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.db import embedded, schema
from facerec.db.connection import Database
from facerec.db.samples import MATCH_ONE_FACE, Sample, SampleStore
from facerec.settings import PROJECT_ROOT, Settings

DIM = 512
MODEL = "synthetic"
SERVER_SETTINGS = {
    "shared_buffers": "3GB",  # the 1M index (2.6 GB) in PostgreSQL's own cache
    "maintenance_work_mem": "5GB",  # the 1M graph fits: the build never spills to disk
    "max_parallel_maintenance_workers": "1",  # 2 cores: the leader and one worker
    "max_wal_size": "8GB",
    "huge_pages": "try",  # PostgreSQL's default: shared_buffers in huge pages where the kernel has them reserved
}


@dataclass(frozen=True)
class Gallery:
    """size vectors of size / photos identities, generated chunk by chunk, reproducibly."""

    size: int
    photos: int
    look_alikes: int = 100  # identities per group of look-alikes (1: every identity on its own)
    seed: int = 7
    spread: float = 1.7  # identities of a group: cosine ~ 1 / (1 + spread^2) = 0.26
    noise: float = 0.9  # photos of an identity: cosine ~ 1 / (1 + noise^2) = 0.55
    ids_per_chunk: int = 2500

    @property
    def identities(self) -> int:
        return math.ceil(self.size / self.photos)

    def _centres(self, chunk: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, chunk, 0])
        groups = unit(rng.standard_normal((math.ceil(self.ids_per_chunk / self.look_alikes), DIM)))
        if self.look_alikes == 1:
            return groups
        return _perturbed(groups.repeat(self.look_alikes, axis=0)[: self.ids_per_chunk], self.spread, rng)

    def _noisy(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _perturbed(centres, self.noise, rng)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(identity of each row, unit vectors), self.size rows in all."""
        for chunk, first in enumerate(range(0, self.identities, self.ids_per_chunk)):
            centres = self._centres(chunk).repeat(self.photos, axis=0)
            vectors = self._noisy(centres, np.random.default_rng([self.seed, chunk, 1]))
            identity = first + np.arange(len(vectors)) // self.photos
            keep = identity * self.photos + np.arange(len(vectors)) % self.photos < self.size
            yield identity[keep], vectors[keep]

    def queries(self, count: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, salt])
        identity = rng.integers(0, self.identities, count)
        chunks = {chunk: self._centres(chunk) for chunk in set(identity // self.ids_per_chunk)}
        centres = np.stack([chunks[i // self.ids_per_chunk][i % self.ids_per_chunk] for i in identity])
        return identity, self._noisy(centres, rng)


def _perturbed(centres: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at cosine 1 / sqrt(1 + scale^2) from their centres, in random directions."""
    return unit(centres + scale / math.sqrt(DIM) * rng.standard_normal(centres.shape, dtype=np.float32))


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def sample_id(identity: int) -> str:
    return f"id{identity:07d}"


class ExactSearch:
    """Brute-force nearest vector of each query, updated chunk by chunk as the gallery streams by."""

    def __init__(self, queries: np.ndarray):
        self.queries = queries
        self.best = np.full(len(queries), -np.inf, dtype=np.float32)
        self.identity = np.full(len(queries), -1)

    def update(self, identity: np.ndarray, vectors: np.ndarray) -> None:
        similarity = vectors @ self.queries.T
        rows = similarity.argmax(axis=0)
        better = similarity[rows, np.arange(len(self.queries))] > self.best
        self.best[better] = similarity[rows, np.arange(len(self.queries))][better]
        self.identity[better] = identity[rows][better]

    def ids(self) -> list[str]:
        return [sample_id(i) for i in self.identity]


@dataclass
class Timing:
    method: str
    p50_ms: float
    p95_ms: float
    recall_at_1: float
    queries: int
    extrapolated: bool = False


@dataclass
class SizeResult:
    size: int
    load_s: float = 0.0
    build_s: float = 0.0
    table_mb: float = 0.0
    index_mb: float = 0.0
    build_peak_rss_mb: float = 0.0
    exact_is_true_identity: float = 0.0
    index_used: bool = False
    baseline_load_s: float | None = None
    load_average: float = 0.0  # of the machine (1 min) when the queries were timed: it is shared
    index: str = ""  # the vector index the queries were timed on, as PostgreSQL defines it
    timings: list[Timing] = field(default_factory=list)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    p50, p95 = np.percentile(np.array(seconds) * 1000, [50, 95])
    return round(float(p50), 3), round(float(p95), 3)


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- the server and its databases ----------------------------------------------------------


def start_server(pgdata: Path, settings: dict[str, str] = SERVER_SETTINGS) -> str:
    url = embedded.start(pgdata)
    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    embedded.stop(pgdata)  # shared_buffers and huge_pages take a restart
    return embedded.start(pgdata)


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = admin_url.replace("/postgres?", f"/{name}?")
    with psycopg.connect(url, autocommit=True) as conn:
        schema.migrate(conn)
    return url


def kept_database(admin_url: str, name: str, size: int) -> str | None:
    """The URL of a gallery database that an earlier --keep run left, if it holds size vectors."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return None
    url = admin_url.replace("/postgres?", f"/{name}?")
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {schema.TABLE}").fetchone()[0]
    return url if rows == size else None


def kept_gallery_url(out: Path, name: str, size: int) -> str:
    """The URL of a gallery that a --keep run left in out, its server started if it was not running
    (and left running, as --keep leaves it); else exits naming what is missing, with no server left
    behind that it started."""
    pgdata = out / "pgdata"
    if not (pgdata / "PG_VERSION").is_file():
        raise SystemExit(f"no kept galleries in {out}: run bench/matching.py --keep --out {out} first")
    running = embedded.running_url(pgdata)
    url = kept_database(running or embedded.start(pgdata), name, size)
    if url is None:
        if running is None:
            embedded.stop(pgdata)
        raise SystemExit(f"no gallery {name} of {size:,} vectors in {out}: bench/matching.py --keep makes one")
    return url


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- ours: COPY, build the index, query through SampleStore ----------------------------------


def load_ours(url: str, gallery: Gallery, exact: ExactSearch, result: SizeResult, args: argparse.Namespace) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        index_definition = wanted_index(schema.drop_vector_index(conn), args, gallery.size)
    database = Database(Settings(database_url=url, db_pool_size=1))
    started = time.perf_counter()
    SampleStore(database).bulk_load(gallery_rows(gallery, exact), MODEL)
    result.load_s = round(time.perf_counter() - started, 1)
    database.close()
    log(f"{gallery.size}: COPY {result.load_s} s; building the HNSW index")
    build_index(url, index_definition, result)


def wanted_index(definition: str, args: argparse.Namespace, size: int) -> str:
    """The schema's HNSW index with --m/--ef-construction, or an IVFFlat one (--index ivfflat)."""
    if args.index == "ivfflat":
        lists = args.lists or max(1, size // 1000)  # pgvector's advice up to a million rows
        return (
            f"CREATE INDEX {schema.VECTOR_INDEX} ON {schema.TABLE}"
            f" USING ivfflat (embedding vector_cosine_ops) WITH (lists = {lists})"
        )
    if " USING hnsw " not in definition:  # a kept gallery's IVFFlat index, or none
        definition = f"CREATE INDEX {schema.VECTOR_INDEX} ON {schema.TABLE} USING hnsw (embedding vector_cosine_ops)"
    return schema.with_options(definition, {"m": args.m, "ef_construction": args.ef_construction})[0]


def index_definition(url: str) -> str:
    """The vector index's CREATE INDEX statement, or "" where there is none (a build that was stopped)."""
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", (schema.VECTOR_INDEX,)).fetchone()[0] is None:
            return ""
        return schema.vector_index_definition(conn)


def rebuild_index(url: str, args: argparse.Namespace, size: int, result: SizeResult) -> None:
    """A kept gallery's index built again if it is not the one asked for."""
    definition = index_definition(url)
    wanted = wanted_index(definition, args, size)
    if schema.with_options(wanted, {}) == schema.with_options(definition, {}):
        return
    log(f"{size}: building the index again: {wanted}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {schema.VECTOR_INDEX}")
    build_index(url, wanted, result)


def gallery_rows(gallery: Gallery, exact: ExactSearch) -> Iterator[tuple[Sample, np.ndarray]]:
    for identity, vectors in gallery.chunks():
        exact.update(identity, vectors)
        for row, (who, vector) in enumerate(zip(identity, vectors, strict=True)):
            yield Sample(sample_id(who), f"person {who}", "", "", str(row % gallery.photos)), vector


def build_index(url: str, definition: str, result: SizeResult) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary))
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = time.perf_counter()
        conn.execute(definition)
        result.build_s = round(time.perf_counter() - started, 1)
        result.build_peak_rss_mb = peak_rss_mb(backend)
        conn.execute(f"VACUUM ANALYZE {schema.TABLE}")
        table, index = conn.execute(
            "SELECT pg_relation_size(%s), pg_relation_size(%s)", (schema.TABLE, schema.VECTOR_INDEX)
        ).fetchone()
    result.table_mb, result.index_mb = round(table / 2**20, 1), round(index / 2**20, 1)
    for notice in notices:
        log(f"build notice: {notice}")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a server process (its shared memory pages touched included); 0 if unreadable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), "VmHWM: 0 kB")
    return round(int(line.split()[1]) / 1024, 1)


def index_used(url: str, query: np.ndarray) -> bool:
    with psycopg.connect(url) as conn:
        register_vector(conn)
        plan = conn.execute("EXPLAIN " + MATCH_ONE_FACE, {"vector": query, "candidates": 1, "top_k": 1}).fetchall()
    return any(schema.VECTOR_INDEX in row[0] for row in plan)


def search_settings(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(label, SET statement) of each query-time setting to time."""
    if args.index == "ivfflat":
        return [(f"ivfflat probes={probes}", f"SET ivfflat.probes = {probes}") for probes in args.probes]
    return [(f"hnsw ef_search={ef}", f"SET hnsw.ef_search = {ef}") for ef in args.ef]


def time_ours(url: str, label: str, search: str, queries: np.ndarray, truth: list[str], warm_up: np.ndarray) -> Timing:
    database = Database(Settings(database_url=url, db_pool_size=1))
    with database.connection() as conn:  # the pool's one connection, after the service's own settings
        conn.execute(search)
    store = SampleStore(database)
    for query in warm_up:
        store.match(query[None], MODEL)
    seconds, hits = [], 0
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        [found] = store.match(query[None], MODEL)
        seconds.append(time.perf_counter() - started)
        hits += bool(found) and found[0].sample_id == expected
    database.close()
    return Timing(label, *percentiles(seconds), round(hits / len(queries), 4), len(queries))


# --- the original: JSON text, the whole table per query, a Python loop ----------------------

BASELINE_TABLE = "original_samples"


def load_baseline(url: str, gallery: Gallery) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {BASELINE_TABLE} (sample_id text, name text, metadata text, embedding text)")
        with conn.cursor().copy(f"COPY {BASELINE_TABLE} FROM STDIN") as copy:
            for identity, vectors in gallery.chunks():
                for who, vector in zip(identity, vectors, strict=True):
                    copy.write_row((sample_id(who), f"person {who}", "", json.dumps(vector.tolist())))
    return round(time.perf_counter() - started, 1)


def original_match(conn: psycopg.Connection, query: np.ndarray) -> str:
    """What the original did for every face: read every row, parse its vector, compare in Python."""
    best_id, best = "", -2.0
    for sample, _name, _metadata, text in conn.execute(f"SELECT * FROM {BASELINE_TABLE}").fetchall():
        vector = np.array(json.loads(text), dtype=np.float32)
        similarity = float(np.dot(query, vector) / (np.linalg.norm(query) * np.linalg.norm(vector)))
        if similarity > best:
            best_id, best = sample, similarity
    return best_id


def time_baseline(url: str, queries: np.ndarray, truth: list[str]) -> Timing:
    seconds, hits = [], 0
    with psycopg.connect(url) as conn:
        for query, expected in zip(queries, truth, strict=True):
            started = time.perf_counter()
            hits += original_match(conn, query) == expected
            seconds.append(time.perf_counter() - started)
    return Timing("original (JSON, Python loop)", *percentiles(seconds), round(hits / len(queries), 4), len(queries))


def extrapolated_baseline(measured: tuple[int, Timing], size: int) -> Timing:
    measured_size, timing = measured
    factor = size / measured_size
    return Timing(
        f"original, extrapolated x{factor:g} from {measured_size:,}",
        round(timing.p50_ms * factor, 1),
        round(timing.p95_ms * factor, 1),
        timing.recall_at_1,
        0,
        extrapolated=True,
    )


# --- one gallery size ------------------------------------------------------------------------


def run_size(admin_url: str, args: argparse.Namespace, size: int, baseline: dict) -> SizeResult:
    gallery = Gallery(size, args.photos, args.look_alikes)
    query_ids, queries = gallery.queries(args.queries, salt=args.query_seed)
    _, warm_up = gallery.queries(args.warm_up, salt=2)
    exact = ExactSearch(queries)
    result = SizeResult(size)
    name = f"bench_matching_{size}" + ("" if args.index == "hnsw" else f"_{args.index}")
    url = kept_database(admin_url, name, size) if args.reuse else None
    reused = url is not None
    try:
        if reused:
            log(f"{size}: reusing the kept database {name}: the original's way not run")
            for identity, vectors in gallery.chunks():
                exact.update(identity, vectors)
            rebuild_index(url, args, size, result)
        else:
            url = fresh_database(admin_url, name)
            load_ours(url, gallery, exact, result, args)
        truth = exact.ids()
        result.exact_is_true_identity = float(np.mean(exact.identity == query_ids))
        result.index_used = index_used(url, queries[0])
        result.index = index_definition(url)
        log(f"{size}: index built in {result.build_s} s, {result.index_mb} MB; timing queries")
        result.load_average = round(os.getloadavg()[0], 1)
        result.timings = [
            time_ours(url, label, search, queries, truth, warm_up) for label, search in search_settings(args)
        ]
        if not reused and args.baseline_queries:
            result.timings.insert(0, baseline_timing(url, gallery, queries, truth, args, baseline, result))
    finally:
        if not args.keep:
            drop_database(admin_url, name)
    return result


def baseline_timing(url, gallery, queries, truth, args, baseline: dict, result: SizeResult) -> Timing:
    """Run the original's way if its projected time fits the budget, else extrapolate it."""
    count = min(args.baseline_queries, len(queries))
    if "largest" in baseline:
        measured_size, timing = baseline["largest"]
        factor = gallery.size / measured_size
        projected = factor * (baseline["load_s"] + timing.p50_ms / 1000 * count)
        if projected > args.baseline_budget_s:
            log(f"{gallery.size}: the original's way would take ~{projected:.0f} s: extrapolated")
            return extrapolated_baseline(baseline["largest"], gallery.size)
    log(f"{gallery.size}: loading and timing the original's way")
    result.baseline_load_s = load_baseline(url, gallery)
    timing = time_baseline(url, queries[:count], truth[:count])
    baseline.update(largest=(gallery.size, timing), load_s=result.baseline_load_s)
    return timing


# --- report -------------------------------------------------------------------------------


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "memory_gb": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "python": platform.python_version(),
    }


def server_about(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return {
            "postgresql": conn.execute("SHOW server_version").fetchone()[0],
            "pgvector": conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()[0],
            "huge_pages": conn.execute("SHOW huge_pages_status").fetchone()[0],
        }


def print_report(results: list[SizeResult], about: dict) -> None:
    print(
        f"\nmatching benchmark, {about['date']}: {about['cpus']} CPUs, {about['memory_gb']} GB, no GPU; "
        f"PostgreSQL {about['postgresql']}, pgvector {about['pgvector']}, shared_buffers in huge pages: "
        f"{about['huge_pages']}"
    )
    print(f"{'gallery':>9}  {'method':<44} {'p50 ms':>10} {'p95 ms':>10} {'recall@1':>8} {'speed-up (p50)':>15}")
    for result in results:
        baseline = result.timings[0] if result.timings[0].method.startswith("original") else None
        for timing in result.timings:
            ratio = f"{baseline.p50_ms / timing.p50_ms:>14,.0f}x" if baseline else f"{'-':>15}"
            mark = " (extrapolated)" if baseline and baseline.extrapolated and timing is not baseline else ""
            print(
                f"{result.size:>9,}  {timing.method:<44} {timing.p50_ms:>10.2f} {timing.p95_ms:>10.2f} "
                f"{timing.recall_at_1:>8.3f} {ratio}{mark}"
            )
    print(
        f"\n{'gallery':>9}  {'COPY s':>8} {'index build s':>14} {'table MB':>9} {'index MB':>9} "
        f"{'build peak RSS MB':>18} {'index used':>10} {'exact = identity':>16} {'load avg':>8}"
    )
    for r in results:
        print(
            f"{r.size:>9,}  {r.load_s:>8.1f} {r.build_s:>14.1f} {r.table_mb:>9.1f} {r.index_mb:>9.1f} "
            f"{r.build_peak_rss_mb:>18.1f} {r.index_used!s:>10} {r.exact_is_true_identity:>16.3f} "
            f"{r.load_average:>8.1f}"
        )


def parse_sizes(text: str) -> list[int]:
    units = {"k": 1_000, "m": 1_000_000}
    return [int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(s) for s in text.lower().split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1k,10k"), help="e.g. 1k,10k,100k,1m")
    parser.add_argument("--photos", type=int, default=4, help="vectors per identity")
    parser.add_argument("--look-alikes", type=int, default=100, help="identities per group of look-alikes")
    parser.add_argument("--ef", type=lambda s: [int(v) for v in s.split(",")], default=[40, 100, 200])
    parser.add_argument("--index", choices=("hnsw", "ivfflat"), default="hnsw", help="the vector index's kind")
    parser.add_argument("--probes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 4, 16, 32])
    parser.add_argument("--lists", type=int, help="IVFFlat lists (default: gallery / 1000, pgvector's advice)")
    parser.add_argument("--m", type=int, help="HNSW m (default: the schema's, 16)")
    parser.add_argument("--ef-construction", type=int, help="HNSW ef_construction (default: the schema's, 128)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per ef_search")
    parser.add_argument("--query-seed", type=int, default=1, help="another seed: another set of queries (not 2)")
    parser.add_argument("--warm-up", type=int, default=20, help="untimed queries first")
    parser.add_argument(
        "--baseline-queries", type=int, default=5, help="timed queries of the original's way (0: not run)"
    )
    parser.add_argument("--baseline-budget-s", type=float, default=600.0, help="else extrapolate the original")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "out")
    parser.add_argument("--huge-pages", choices=("try", "off"), default="try", help="PostgreSQL's huge_pages")
    parser.add_argument("--keep", action="store_true", help="keep the galleries' databases (and the server running)")
    parser.add_argument("--reuse", action="store_true", help="time queries on galleries an earlier --keep left")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.out.chmod(0o755)  # the embedded server may run as another user
    settings = {**SERVER_SETTINGS, "huge_pages": args.huge_pages}
    admin_url = start_server(args.out / "pgdata", settings)
    about = {**machine(), **server_about(admin_url)}
    results, baseline = [], {}
    for size in sorted(args.sizes):
        log(f"gallery of {size:,} vectors ({math.ceil(size / args.photos):,} identities)")
        results.append(run_size(admin_url, args, size, baseline))
        print_report(results, about)  # as it goes: a long run shows what it has
    report = {"about": about, "settings": settings, "args": vars(args), "results": [asdict(r) for r in results]}
    path = args.out / f"matching-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    log(f"results in {path}")
    if not args.keep:
        embedded.stop(args.out / "pgdata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
