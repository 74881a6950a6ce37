"""Labelled photos for the accuracy benchmark: pairs files and a gallery/probe folder."""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "same"}
FALSE_WORDS = {"0", "false", "no", "different"}


@dataclass(frozen=True)
class Pair:
    left: Path
    right: Path
    same: bool


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    faces: tuple[str | None, ...]  # who is in it, left to right by face centre; None: a person not enrolled


def read_pairs(path: Path, root: Path | None = None) -> list[Pair]:
    """LFW's pairs.txt layout, or a CSV with columns file_x, file_y, same.

    Relative image paths are under root (default: the pairs file's folder).
    """
    text = Path(path).read_text()
    root = Path(root) if root is not None else Path(path).parent
    first_line = text.lstrip().split("\n", 1)[0]
    return _csv_pairs(text, root) if "," in first_line else _lfw_pairs(text, root)


def _lfw_pairs(text: str, root: Path) -> list[Pair]:
    """First line: a count, or folds and count; then "name n1 n2" (same) or "name1 n1 name2 n2" (different)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines and all(token.isdigit() for token in lines[0]):
        lines = lines[1:]
    pairs = []
    for number, fields in enumerate(lines, start=2):
        if len(fields) == 3:
            name, first, second = fields
            pairs.append(Pair(_lfw_image(root, name, first), _lfw_image(root, name, second), True))
        elif len(fields) == 4:
            pairs.append(Pair(_lfw_image(root, *fields[:2]), _lfw_image(root, *fields[2:]), False))
        else:
            raise ValueError(f"pairs line {number}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {fields}")
    return pairs


def _lfw_image(root: Path, name: str, number: str) -> Path:
    return root / name / f"{name}_{int(number):04d}.jpg"


def _csv_pairs(text: str, root: Path) -> list[Pair]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or not {"file_x", "file_y", "same"} <= set(rows[0]):
        raise ValueError("a pairs CSV needs the columns file_x, file_y, same")
    return [Pair(root / row["file_x"], root / row["file_y"], _truth(row["same"])) for row in rows]


def _truth(value: str) -> bool:
    word = value.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"'same' must be one of {sorted(TRUE_WORDS | FALSE_WORDS)}, got {value!r}")
    return word in TRUE_WORDS


def read_labelled_folder(
    gallery: Path, probes: Path, manifest: Path
) -> tuple[list[LabelledPhoto], list[LabelledPhoto]]:
    """A manifest like ../shared/faces/manifest.json: gallery/<identity>/ photos, probes with their people."""
    listing = json.loads(Path(manifest).read_text())
    gallery_photos = [
        LabelledPhoto(Path(gallery) / identity / name, (identity,))
        for identity, names in listing["gallery"].items()
        for name in names
    ]
    probe_photos = [
        LabelledPhoto(Path(probes) / name, tuple(entry["faces"])) for name, entry in listing["probes"].items()
    ]
    return gallery_photos, probe_photos


def pairs_among(photos: list[LabelledPhoto]) -> list[Pair]:
    """Every pair of one-person photos whose person is known: same when the identities agree."""
    single = [photo for photo in photos if len(photo.faces) == 1 and photo.faces[0] is not None]
    return [Pair(a.path, b.path, a.faces[0] == b.faces[0]) for a, b in itertools.combinations(single, 2)]
