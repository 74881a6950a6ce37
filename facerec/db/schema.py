"""The database schema, as numbered migrations applied in order and recorded.

Trade-offs (numbers in bench/RESULTS.md, matching benchmark):
- HNSW rather than IVFFlat: no training on existing data, good recall untuned, built on an empty
  table and kept up to date row by row; it costs build time and memory (the index holds every
  vector again). m = 16 (pgvector's default) and ef_construction = 128 (twice the default): at
  1M vectors the default graph lost too much recall; higher values buy recall with a slower
  build (and, for m, a bigger index). Recall against latency at query time is hnsw.ef_search.
- vector (float32) rather than halfvec: at 100k faces, m = 24, a halfvec expression index
  (re-ranked in float32) was no faster (2.3 against 2.3 ms at ef_search 40, 4.7 against 4.9 at
  100): the graph walk, not the vectors' size, takes the time.
- HNSW rather than IVFFlat also at 1M: IVFFlat builds in minutes, not an hour, but on the
  benchmark's gallery it found the nearest face for 0.95 of the queries at 32 probes of 1,000
  lists, slower than HNSW at 0.995 (bench/RESULTS.md, matching).
- Bulk loads: COPY with the HNSW index dropped, then one CREATE INDEX (drop_vector_index), with
  maintenance_work_mem larger than the graph.
- The key is (sample_id, photo_id), no surrogate id: Citus can shard the table by sample_id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

EMBEDDING_DIM = 512
TABLE = "sample_face_vectors"
ORIGINAL_TABLE = f"{TABLE}_original"  # where the original service's table is set aside
MIGRATION_LOCK = 0x66616365  # "face": the advisory lock that migrations of one database take in turn
VECTOR_INDEX = "sample_face_vectors_embedding_hnsw"

# Each entry moves the schema from version N-1 to N. Never edit a released entry: append one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        f"""
        CREATE TABLE {TABLE} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            sample_id text NOT NULL,
            photo_id text NOT NULL DEFAULT '',
            name text NOT NULL DEFAULT '',
            metadata text NOT NULL DEFAULT '',
            action text NOT NULL DEFAULT '',
            embedding vector({EMBEDDING_DIM}) NOT NULL,
            model text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            modified_at timestamptz NOT NULL DEFAULT now(),
            -- A sample id (a person) has one photo '' by default; appended photos get their own ids.
            CONSTRAINT sample_face_vectors_sample_photo_key UNIQUE (sample_id, photo_id)
        );
        -- 512 floats are 2 KB: kept inline, a scan reads no TOAST table (4x faster).
        ALTER TABLE {TABLE} ALTER COLUMN embedding SET STORAGE PLAIN;
        CREATE INDEX sample_face_vectors_embedding_hnsw
            ON {TABLE} USING hnsw (embedding vector_cosine_ops);
        -- min(model)/max(model) in two index probes tells whether one model filled the table.
        CREATE INDEX sample_face_vectors_model ON {TABLE} (model);
        """,
    ),
    (
        2,
        f"""
        -- Citus (sharding by sample_id) needs every unique key to hold the distribution column:
        -- the surrogate id goes, the unique (sample_id, photo_id) is the key, also for logical
        -- replication (Citus moves shards with it).
        ALTER TABLE {TABLE} DROP COLUMN id;
        ALTER TABLE {TABLE} REPLICA IDENTITY USING INDEX sample_face_vectors_sample_photo_key;
        -- GET /samples?name=: a hash index, as a name may be longer than a b-tree entry allows.
        CREATE INDEX sample_face_vectors_name ON {TABLE} USING hash (name);
        -- ef_construction 128, not pgvector's 64: a better graph, for recall at a million faces
        -- (bench/RESULTS.md, matching), paid for with a slower build.
        DROP INDEX {VECTOR_INDEX};
        CREATE INDEX {VECTOR_INDEX} ON {TABLE}
            USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128);
        """,
    ),
]
LATEST_VERSION = MIGRATIONS[-1][0]


class ExtensionMissing(RuntimeError):
    pass


def ensure_extension(conn: psycopg.Connection) -> None:
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if not available:
        raise ExtensionMissing(
            "the pgvector extension is not installed on this PostgreSQL server; install it "
            "(e.g. apt install postgresql-16-pgvector, or see https://github.com/pgvector/pgvector#installation) "
            "or use the embedded database (python -m facerec.db.embedded start)"
        )
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def current_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('facerec_schema_version') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM facerec_schema_version").fetchone()
    return row[0] or 0


@dataclass(frozen=True)
class Migrated:
    applied: list[int] = field(default_factory=list)
    set_aside: tuple[str, int] | None = None  # a table found under our name: its new name, its rows


def migrate(conn: psycopg.Connection) -> Migrated:
    """Apply pending migrations in one transaction; say which, and what was set aside."""
    with conn.transaction():
        # Two set-ups at once (init_db runs, /config-database calls): the second waits here, until
        # the first commits, then finds nothing left to do; both creating the extension or the
        # version table at once failed one of them on a unique index of the catalog.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        ensure_extension(conn)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS facerec_schema_version ("
            " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = current_version(conn)
        set_aside = _set_aside_foreign_table(conn) if done == 0 else None
        applied = []
        for version, statements in MIGRATIONS:
            if version > done:
                conn.execute(statements)
                conn.execute("INSERT INTO facerec_schema_version (version) VALUES (%s)", (version,))
                applied.append(version)
    return Migrated(applied, set_aside)


def _set_aside_foreign_table(conn: psycopg.Connection) -> tuple[str, int] | None:
    """A table under our name that no migration of ours made: the original service's, whose
    init_db.py made sample_face_vectors with vectors as JSON text, from crops neither aligned nor
    detected as ours are. Renamed with its indexes and sequences, whose names ours reuse; kept
    whole, never read."""
    if conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
        return None
    new_name = next(
        name
        for name in (ORIGINAL_TABLE, *(f"{ORIGINAL_TABLE}_{n}" for n in range(2, 1000)))
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None
    )
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(TABLE))).fetchone()[0]
    owned = conn.execute(
        """
        SELECT 'INDEX', idx.relname FROM pg_index JOIN pg_class idx ON idx.oid = pg_index.indexrelid
        WHERE pg_index.indrelid = %(table)s::regclass
        UNION ALL
        SELECT 'SEQUENCE', seq.relname FROM pg_depend JOIN pg_class seq ON seq.oid = pg_depend.objid
        WHERE pg_depend.classid = 'pg_class'::regclass AND pg_depend.refobjid = %(table)s::regclass
          AND seq.relkind = 'S'
        """,
        {"table": TABLE},
    ).fetchall()
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(TABLE), sql.Identifier(new_name)))
    for kind, name in owned:  # an index behind a constraint renames the constraint too
        renamed = new_name + name.removeprefix(TABLE) if name.startswith(TABLE) else f"{new_name}_{name}"
        conn.execute(
            sql.SQL("ALTER {} {} RENAME TO {}").format(sql.SQL(kind), sql.Identifier(name), sql.Identifier(renamed))
        )
    return new_name, rows


def set_aside_message(set_aside: tuple[str, int]) -> str:
    table, rows = set_aside
    return (
        f"found a table {TABLE} that this schema did not make (the original service's): renamed it "
        f"{table} with its {rows} rows, which stay there unused (their vectors came from unaligned crops); "
        "enrol those samples again with /update-samples"
    )


def drop_all(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute("DROP TABLE IF EXISTS facerec_schema_version")


def drop_vector_index(conn: psycopg.Connection) -> str:
    """Drop the HNSW index before a bulk load and return the statement that builds it again.

    Building the graph once after COPY is many times faster than inserting into it row by row.
    """
    definition = vector_index_definition(conn)
    conn.execute(f"DROP INDEX {VECTOR_INDEX}")
    return definition


def vector_index_definition(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_get_indexdef(%s::regclass)", (VECTOR_INDEX,)).fetchone()[0]


def with_options(definition: str, options: dict[str, int | None]) -> tuple[str, dict[str, int]]:
    """An index definition with its WITH (...) options replaced by the given ones (None: kept)."""
    head, _, tail = definition.partition(" WITH ")
    current = {name: int(value) for name, value in re.findall(r"(\w+)\s*=\s*'?(\d+)'?", tail)}
    merged = {**current, **{name: value for name, value in options.items() if value is not None}}
    listed = ", ".join(f"{name} = {value}" for name, value in merged.items())
    return (f"{head} WITH ({listed})" if merged else head), merged


def rebuild_vector_index(conn: psycopg.Connection, m: int | None, ef_construction: int | None) -> dict[str, int] | None:
    """Build the HNSW index again with other options, if they differ; returns the new options or None.

    Writes to the table wait until the build ends (minutes to an hour at a million faces): for
    a gallery that has grown to where recall at the default graph falls short (bench/RESULTS.md).
    """
    definition = vector_index_definition(conn)
    _, current = with_options(definition, {})
    wanted, options = with_options(definition, {"m": m, "ef_construction": ef_construction})
    if options == current:
        return None
    with conn.transaction():
        conn.execute(f"DROP INDEX {VECTOR_INDEX}")
        conn.execute(wanted)
    return options
