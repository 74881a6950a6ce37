"""Enrolled sample vectors in PostgreSQL: upsert, clear and nearest-neighbour matching."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

from facerec.db.connection import Database
from facerec.db.schema import TABLE
from facerec.errors import Conflict


@dataclass(frozen=True)
class Sample:
    sample_id: str
    name: str
    metadata: str
    action: str


@dataclass(frozen=True)
class Match:
    sample_id: str
    name: str
    metadata: str
    similarity: float


_UPSERT = f"""
    INSERT INTO {TABLE} (sample_id, photo_id, name, metadata, action, embedding, model)
    VALUES (%s, '', %s, %s, %s, %s, %s)
    ON CONFLICT (sample_id, photo_id) DO UPDATE SET
        name = excluded.name, metadata = excluded.metadata, action = excluded.action,
        embedding = excluded.embedding, model = excluded.model, modified_at = now()
"""

# One round trip for all faces of a request; each face walks the HNSW index for its k nearest.
_MATCH = f"""
    SELECT q.ord, m.sample_id, m.name, m.metadata, 1 - m.distance
    FROM unnest(%s::vector[]) WITH ORDINALITY AS q(v, ord)
    CROSS JOIN LATERAL (
        SELECT sample_id, name, metadata, embedding <=> q.v AS distance
        FROM {TABLE} ORDER BY embedding <=> q.v LIMIT %s
    ) m
    ORDER BY q.ord, m.distance
"""


class SampleStore:
    def __init__(self, database: Database):
        self.database = database

    def upsert(self, items: list[tuple[Sample, np.ndarray]], model: str) -> None:
        """Store all items in one transaction; re-enrolling a sample id replaces all its photos.

        The upsert locks the id's row, so concurrent enrolments of one id queue up and leave one row.
        """
        with self.database.connection() as conn, conn.transaction():
            _require_model(conn, model)
            with conn.cursor() as cursor:
                cursor.executemany(
                    _UPSERT,
                    [(s.sample_id, s.name, s.metadata, s.action, vector, model) for s, vector in items],
                )
                cursor.execute(
                    f"DELETE FROM {TABLE} WHERE sample_id = ANY(%s) AND photo_id <> ''",
                    ([s.sample_id for s, _ in items],),
                )

    def clear(self) -> int:
        with self.database.connection() as conn:
            return conn.execute(f"DELETE FROM {TABLE}").rowcount

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers and has the schema."""
        with self.database.connection() as conn:
            conn.execute(f"SELECT 1 FROM {TABLE} LIMIT 1")

    def match(self, vectors: np.ndarray, model: str, top_k: int = 1) -> list[list[Match]]:
        """The top_k nearest samples of each vector, most similar first."""
        results: list[list[Match]] = [[] for _ in range(len(vectors))]
        if len(vectors) == 0:
            return results
        with self.database.connection() as conn:
            _require_model(conn, model)
            rows = conn.execute(_MATCH, (list(vectors), top_k)).fetchall()
        for ordinal, sample_id, name, metadata, similarity in rows:
            results[ordinal - 1].append(Match(sample_id, name, metadata, float(similarity)))
        return results


def _require_model(conn: psycopg.Connection, model: str) -> None:
    """Refuse to mix embedding spaces: every stored vector must come from the active model."""
    low, high = conn.execute(f"SELECT min(model), max(model) FROM {TABLE}").fetchone()
    if low is None or low == high == model:
        return
    stored = low if low == high else f"{low}, {high}"
    raise Conflict(
        f"the database holds vectors of model {stored} but the service embeds with {model}: "
        "re-enrol the samples (clear them first) or run feature_extraction with that model",
        reason="embedding_model_mismatch",
    )
