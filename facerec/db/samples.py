"""Enrolled faces in PostgreSQL: one row per photo, several photos per sample id (a person).

Every statement is plain SQL over one table whose unique key starts with sample_id, so the table
can be sharded by sample_id with Citus as it is (see README, Scaling).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
from psycopg import sql

from facerec.db.connection import Database
from facerec.db.schema import TABLE
from facerec.errors import Conflict
from facerec.metrics import DB_QUERY_SECONDS

# match() reads this many nearest rows per wanted person, so that top_k distinct persons remain
# after keeping each person's best photo whenever nobody has more photos than this near the query;
# where fewer remain, it reads 4x more, up to MAX_ROWS_READ (pgvector's hnsw.max_scan_tuples: 20,000).
PHOTOS_PER_PERSON = 10
MAX_ROWS_READ = 10_000


@dataclass(frozen=True)
class Sample:
    sample_id: str
    name: str
    metadata: str
    action: str
    photo_id: str = ""


@dataclass(frozen=True)
class Match:
    sample_id: str
    name: str
    metadata: str
    similarity: float
    photo_id: str = ""


@dataclass(frozen=True)
class StoredPhoto:
    sample_id: str
    photo_id: str
    name: str
    metadata: str
    action: str
    model: str
    created_at: datetime
    modified_at: datetime

    def to_dict(self) -> dict:
        return {
            "id": self.sample_id,
            "photo_id": self.photo_id,
            "name": self.name,
            "metadata": self.metadata,
            "action": self.action,
            "model": self.model,
            "created_at": self.created_at.isoformat(),
            "modified_at": self.modified_at.isoformat(),
        }


@dataclass(frozen=True)
class Page:
    total: int | None
    photos: list[StoredPhoto]
    more: bool  # photos follow the last of this page


_UPSERT = f"""
    INSERT INTO {TABLE} (sample_id, photo_id, name, metadata, action, embedding, model)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (sample_id, photo_id) DO UPDATE SET
        name = excluded.name, metadata = excluded.metadata, action = excluded.action,
        embedding = excluded.embedding, model = excluded.model, modified_at = now()
"""

# Per face: walk the HNSW index for the nearest photos, keep each person's best, then the top_k.
MATCH_ONE_FACE = f"""
    SELECT sample_id, name, metadata, 1 - distance, photo_id FROM (
        SELECT DISTINCT ON (sample_id) sample_id, photo_id, name, metadata, distance
        FROM (
            SELECT sample_id, photo_id, name, metadata, embedding <=> %(vector)s AS distance
            FROM {TABLE} ORDER BY distance LIMIT %(candidates)s
        ) nearest_photos
        ORDER BY sample_id, distance
    ) best_photo_per_person
    ORDER BY distance LIMIT %(top_k)s
"""

# The same, also saying how many photos it read: fewer than asked means it read every photo.
MATCH_ONE_FACE_COUNTED = f"""
    WITH nearest_photos AS MATERIALIZED (
        SELECT sample_id, photo_id, name, metadata, embedding <=> %(vector)s AS distance
        FROM {TABLE} ORDER BY distance LIMIT %(candidates)s
    )
    SELECT sample_id, name, metadata, 1 - distance, photo_id, (SELECT count(*) FROM nearest_photos) FROM (
        SELECT DISTINCT ON (sample_id) * FROM nearest_photos ORDER BY sample_id, distance
    ) best_photo_per_person
    ORDER BY distance LIMIT %(top_k)s
"""

_MODELS = f"SELECT min(model), max(model) FROM {TABLE}"

_PHOTO_COLUMNS = "sample_id, photo_id, name, metadata, action, model, created_at, modified_at"


# No ORDER BY on the distance: an HNSW index scan filtered by id could miss the id's rows.
_PHOTOS_OF_SAMPLE = f"""
    SELECT sample_id, name, metadata, 1 - (embedding <=> %s::vector)
    FROM {TABLE} WHERE sample_id = %s
"""


class SampleStore:
    def __init__(self, database: Database):
        self.database = database

    @DB_QUERY_SECONDS.labels("replace").time()
    def upsert(self, items: list[tuple[Sample, np.ndarray]], model: str) -> None:
        """Store all items in one transaction; re-enrolling a sample id replaces all its photos.

        The upsert locks the id's row, so concurrent enrolments of one id queue up and leave one row.
        """
        with self.database.connection() as conn, conn.transaction():
            _require_model(conn, model)
            _write(conn, [(sample.sample_id, "", sample, vector) for sample, vector in items], model)
            conn.execute(
                f"DELETE FROM {TABLE} WHERE sample_id = ANY(%s) AND photo_id <> ''",
                ([sample.sample_id for sample, _ in items],),
            )

    @DB_QUERY_SECONDS.labels("append").time()
    def append(self, items: list[tuple[Sample, np.ndarray]], model: str) -> list[str]:
        """Add each item as a photo of its sample id, in one transaction; returns the photo ids.

        An item's own photo_id makes the call idempotent (sent again, it replaces that photo);
        without one it gets a new random id.
        """
        photo_ids = [sample.photo_id or uuid.uuid4().hex[:12] for sample, _ in items]
        with self.database.connection() as conn, conn.transaction():
            _require_model(conn, model)
            _write(conn, [(s.sample_id, p, s, v) for (s, v), p in zip(items, photo_ids, strict=True)], model)
        return photo_ids

    @DB_QUERY_SECONDS.labels("bulk_load").time()
    def bulk_load(self, items: Iterable[tuple[Sample, np.ndarray]], model: str) -> int:
        """COPY rows in (binary), for loading millions at once; no conflict handling: new keys only.

        For a first load, drop the HNSW index before and build it after (schema.drop_vector_index).
        """
        columns = "sample_id, photo_id, name, metadata, action, embedding, model"
        count = 0
        with self.database.connection() as conn, conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")  # a maintenance load, not a request
            _require_model(conn, model)
            with conn.cursor().copy(f"COPY {TABLE} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "text", "text", "text", "vector", "text"])
                for sample, vector in items:
                    copy.write_row(
                        (sample.sample_id, sample.photo_id, sample.name, sample.metadata, sample.action, vector, model)
                    )
                    count += 1
        return count

    @DB_QUERY_SECONDS.labels("list").time()
    def list_photos(
        self,
        limit: int,
        offset: int = 0,
        after: tuple[str, str] | None = None,
        sample_id: str | None = None,
        name: str | None = None,
    ) -> Page:
        """Photos ordered by sample id then photo id, from `offset` or from the first after the key
        `after` (sample id, photo id). A key is stable under concurrent writes, where an offset skips
        or repeats a photo when one before it comes or goes. Pages by offset count all the photos that
        match the filters; pages after a key, read to walk a whole gallery, do not (total None): a
        count per page made such a walk quadratic."""
        filters = {"sample_id": sample_id, "name": name}
        conditions = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k, v in filters.items() if v]
        where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
        after_key = sql.SQL("(sample_id, photo_id) > (%(after_id)s, %(after_photo_id)s)") if after else sql.SQL("true")
        params = {**filters, "offset": offset, "rows": limit + 1}
        params["after_id"], params["after_photo_id"] = after or (None, None)
        page_query = sql.SQL(
            f"SELECT {_PHOTO_COLUMNS} FROM {TABLE} WHERE {{}} AND {{}} "
            "ORDER BY sample_id, photo_id OFFSET %(offset)s LIMIT %(rows)s"
        ).format(where, after_key)
        count_query = sql.SQL(f"SELECT count(*) FROM {TABLE} WHERE {{}}").format(where)
        with self.database.connection() as conn, conn.pipeline():
            counted = None if after else conn.execute(count_query, params)
            page = conn.execute(page_query, params)
        photos = [StoredPhoto(*row) for row in page.fetchall()]
        total = counted.fetchone()[0] if counted else None
        return Page(total, photos[:limit], more=len(photos) > limit)

    @DB_QUERY_SECONDS.labels("delete").time()
    def delete(self, sample_id: str, photo_id: str | None = None) -> int:
        """Delete a person (all photos) or one photo; returns the number of rows removed."""
        with self.database.connection() as conn:
            if photo_id is None:
                return conn.execute(f"DELETE FROM {TABLE} WHERE sample_id = %s", (sample_id,)).rowcount
            return conn.execute(
                f"DELETE FROM {TABLE} WHERE sample_id = %s AND photo_id = %s", (sample_id, photo_id)
            ).rowcount

    @DB_QUERY_SECONDS.labels("clear").time()
    def clear(self) -> int:
        with self.database.connection() as conn:
            return conn.execute(f"DELETE FROM {TABLE}").rowcount

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers and has the schema."""
        with self.database.connection() as conn:
            conn.execute(f"SELECT 1 FROM {TABLE} LIMIT 1")

    @DB_QUERY_SECONDS.labels("verify").time()
    def nearest_photo(self, sample_id: str, vector: np.ndarray, model: str) -> Match | None:
        """The most similar photo of one sample id (for 1:1 verification), or None if it is not enrolled."""
        with self.database.connection() as conn:
            _require_model(conn, model)
            rows = conn.execute(_PHOTOS_OF_SAMPLE, (vector, sample_id)).fetchall()
        if not rows:
            return None
        sample_id, name, metadata, similarity = max(rows, key=lambda row: row[3])
        return Match(sample_id, name, metadata, float(similarity))

    @DB_QUERY_SECONDS.labels("match").time()
    def match(self, vectors: np.ndarray, model: str, top_k: int = 1) -> list[list[Match]]:
        """For each vector, up to top_k distinct sample ids, most similar first, each with its best photo.

        One round trip for all faces: the per-face queries go out together in a pipeline.
        """
        if len(vectors) == 0:
            return []
        candidates = (top_k - 1) * PHOTOS_PER_PERSON + 1
        with self.database.connection() as conn:
            with conn.pipeline():
                models = conn.execute(_MODELS)
                cursors = [
                    conn.execute(MATCH_ONE_FACE, {"vector": vector, "candidates": candidates, "top_k": top_k})
                    for vector in vectors
                ]
            stored = models.fetchone()
            _check_model(stored, model)
            found = [[Match(*row) for row in cursor.fetchall()] for cursor in cursors]
            if stored[0] is None:  # nothing enrolled
                return found
            return [
                matches if len(matches) == top_k else self._match_reading_more(conn, vector, candidates, top_k)
                for vector, matches in zip(vectors, found, strict=True)
            ]

    def _match_reading_more(self, conn: psycopg.Connection, vector: np.ndarray, read: int, top_k: int) -> list[Match]:
        """Fewer than top_k persons in the rows read: one person's photos filled them, the scan ended
        at ef_search rows before the rows asked for, or the index's
        nearest entries were all dead versions of re-enrolled rows, which it cannot return (each
        re-enrolment leaves one in the graph until a VACUUM takes it out: 130 re-enrolments of one
        id with new photos hid it from every query at ef_search 100). Read again, with pgvector's
        iterative scan walking on past such entries, 4x more rows each time, until top_k persons are
        found or every photo was read. Only here: always on, it made every 1M query ~12% slower.
        pgvector before 0.8 has no iterative scan: there each read stops at ef_search rows."""
        walking = _start_iterative_scan(conn)
        try:
            while True:
                read = min(4 * read, MAX_ROWS_READ)
                rows = conn.execute(
                    MATCH_ONE_FACE_COUNTED, {"vector": vector, "candidates": read, "top_k": top_k}
                ).fetchall()
                if len(rows) == top_k or not rows or rows[0][5] < read or read == MAX_ROWS_READ:
                    return [Match(*row[:5]) for row in rows]
        finally:
            if walking:
                conn.execute("RESET hnsw.iterative_scan")


def _start_iterative_scan(conn: psycopg.Connection) -> bool:
    """pgvector 0.8's iterative scan, on this (autocommit) connection; False where its pgvector is
    older, which reserves the hnsw. prefix and so refuses the name."""
    try:
        conn.execute("SET hnsw.iterative_scan = strict_order")
    except psycopg.errors.InvalidName:
        return False
    return True


def _write(conn: psycopg.Connection, rows: list[tuple[str, str, Sample, np.ndarray]], model: str) -> None:
    """Rows are written in key order: two requests holding some ids in opposite orders would each
    lock one the other waits for (PostgreSQL breaks such a deadlock by failing one of them)."""
    with conn.cursor() as cursor:
        cursor.executemany(
            _UPSERT,
            [
                (sample_id, photo_id, s.name, s.metadata, s.action, vector, model)
                for sample_id, photo_id, s, vector in sorted(rows, key=lambda row: row[:2])
            ],
        )


def _require_model(conn: psycopg.Connection, model: str) -> None:
    _check_model(conn.execute(_MODELS).fetchone(), model)


def _check_model(stored: tuple[str | None, str | None], model: str) -> None:
    """Refuse to mix embedding spaces: every stored vector must come from the active model."""
    low, high = stored
    if low is None or low == high == model:
        return
    found = low if low == high else f"{low}, {high}"
    raise Conflict(
        f"the database holds vectors of model {found} but the service embeds with {model}: "
        "re-enrol the samples (clear them first) or run feature_extraction with that model",
        reason="embedding_model_mismatch",
    )
