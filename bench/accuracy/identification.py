"""Identification as the service does it: each probe face takes the identity of its nearest sample.

Rank-1 counts the enrolled faces whose nearest sample is theirs (no threshold). At the threshold, an
enrolled face is identified when that nearest sample is also similar enough; a face of someone not
enrolled is falsely accepted when any sample is similar enough. A face the detector missed counts
as a failure for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.accuracy.datasets import LabelledPhoto
from bench.accuracy.variants import PhotoFaces

MATCH, MISMATCH = 3, 1  # alignment scores: agreeing labels first, then pairing over leaving faces out


@dataclass
class Gallery:
    identities: list[str]
    vectors: np.ndarray

    def nearest(self, vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        similarities = vectors @ self.vectors.T
        best = np.argmax(similarities, axis=1)
        return [self.identities[index] for index in best], similarities[np.arange(len(best)), best]


@dataclass
class Tally:
    enrolled_faces: int = 0
    rank1: int = 0
    identified: int = 0
    not_enrolled_faces: int = 0
    false_accepts: int = 0
    missed_faces: int = 0
    extra_faces: int = 0

    def summary(self, threshold: float) -> dict:
        return {
            "threshold": threshold,
            "enrolled_faces": self.enrolled_faces,
            "rank1": _rate(self.rank1, self.enrolled_faces),
            "identification_rate_at_threshold": _rate(self.identified, self.enrolled_faces),
            "not_enrolled_faces": self.not_enrolled_faces,
            "false_accepts": self.false_accepts,
            "false_accept_rate": _rate(self.false_accepts, self.not_enrolled_faces),
            "missed_faces": self.missed_faces,
            "extra_faces": self.extra_faces,
        }


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def build_gallery(photos: list[tuple[LabelledPhoto, PhotoFaces]]) -> Gallery:
    """One sample per gallery photo, its largest face, as /update-samples enrols; faceless photos enrol nothing."""
    enrolled = [(photo.faces[0], found.largest()) for photo, found in photos if found.faces]
    return Gallery([identity for identity, _ in enrolled], np.stack([vector for _, vector in enrolled]))


def identify(gallery: Gallery, probes: list[tuple[LabelledPhoto, PhotoFaces]], threshold: float) -> Tally:
    tally = Tally()
    enrolled = set(gallery.identities)
    for photo, found in probes:
        expected = [identity if identity in enrolled else None for identity in photo.faces]
        names, similarities = gallery.nearest(found.vectors) if found.faces else ([], np.empty(0))
        accepted = [name if similar else None for name, similar in zip(names, similarities > threshold, strict=True)]
        _count(tally, names, accepted, expected)
    return tally


def _count(tally: Tally, names: list[str], accepted: list[str | None], expected: list[str | None]) -> None:
    pairs = align(accepted, expected)
    tally.extra_faces += len(names) - len(pairs)
    tally.missed_faces += len(expected) - len(pairs)
    tally.enrolled_faces += sum(want is not None for want in expected)
    tally.not_enrolled_faces += sum(want is None for want in expected)
    for found_index, want_index in pairs:
        want = expected[want_index]
        if want is None:
            tally.false_accepts += accepted[found_index] is not None
        else:
            tally.rank1 += names[found_index] == want
            tally.identified += accepted[found_index] == want


def align(found: list[str | None], expected: list[str | None]) -> list[tuple[int, int]]:
    """Pair the faces found with the faces expected, both left to right.

    Same counts: in order. Otherwise the detector missed or added faces, and which ones is not
    known: the order-preserving pairing that agrees on the most labels is taken, which gives a
    setting the benefit of the doubt.
    """
    if len(found) == len(expected):
        return list(zip(range(len(found)), range(len(expected)), strict=True))
    rows, cols = len(found) + 1, len(expected) + 1
    score = np.zeros((rows, cols), dtype=np.int64)
    for i in range(1, rows):
        for j in range(1, cols):
            pair = MATCH if found[i - 1] == expected[j - 1] else MISMATCH
            score[i, j] = max(score[i - 1, j - 1] + pair, score[i - 1, j], score[i, j - 1])
    pairs, i, j = [], rows - 1, cols - 1
    while i and j:
        pair = MATCH if found[i - 1] == expected[j - 1] else MISMATCH
        if score[i, j] == score[i - 1, j - 1] + pair:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif score[i, j] == score[i - 1, j]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]
