"""How small a face can be and still match: gallery photos shrunk until their face is N pixels wide."""

from __future__ import annotations

import numpy as np

from bench.accuracy.datasets import LabelledPhoto
from bench.accuracy.derived import shrunk
from bench.accuracy.metrics import NO_FACE
from bench.accuracy.variants import Variant


def face_size_sweep(variant: Variant, gallery: list[LabelledPhoto], widths: list[int], threshold: float) -> list[dict]:
    """For each width: each gallery photo shrunk to it, against the other full-size photos of its person."""
    return [_at_width(variant, gallery, width, threshold) for width in widths]


def _at_width(variant: Variant, gallery: list[LabelledPhoto], width: int, threshold: float) -> dict:
    scores, missed = [], 0
    for photo in gallery:
        full = variant.read(photo.path)
        others = [variant.read(o.path).largest() for o in gallery if o.faces == photo.faces and o.path != photo.path]
        others = [vector for vector in others if vector is not None]
        if full.largest_index() is None or not others:
            continue
        small = variant.faces_in(shrunk(variant.load(photo.path), full.faces[full.largest_index()], width)).largest()
        missed += small is None
        scores.extend(NO_FACE if small is None else float(small @ other) for other in others)
    scores = np.array(scores)
    found = scores[scores > NO_FACE]
    return {
        "face_px": width,
        "photos_missed": missed,
        "genuine_pairs": len(scores),
        "genuine_min": round(float(found.min()), 4) if len(found) else None,
        "genuine_median": round(float(np.median(found)), 4) if len(found) else None,
        "accepted_at_threshold": round(float(np.mean(scores > threshold)), 4) if len(scores) else None,
    }
