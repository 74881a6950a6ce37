"""What /verify compares a face with: the stored photos of one sample id."""

from __future__ import annotations

import numpy as np

from facerec.db.connection import Database
from facerec.db.samples import Match, _require_model
from facerec.db.schema import TABLE

# No ORDER BY on the distance: an HNSW index scan filtered by id could miss the id's rows.
_PHOTOS_OF_SAMPLE = f"""
    SELECT sample_id, name, metadata, 1 - (embedding <=> %s::vector)
    FROM {TABLE} WHERE sample_id = %s
"""


def nearest_photo(database: Database, sample_id: str, vector: np.ndarray, model: str) -> Match | None:
    """The most similar photo of the sample id, or None when the id is not enrolled."""
    with database.connection() as conn:
        _require_model(conn, model)
        rows = conn.execute(_PHOTOS_OF_SAMPLE, (vector, sample_id)).fetchall()
    if not rows:
        return None
    sample_id, name, metadata, similarity = max(rows, key=lambda row: row[3])
    return Match(sample_id, name, metadata, float(similarity))
