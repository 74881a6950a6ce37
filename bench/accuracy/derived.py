"""Photos cut out of others: strangers from group photos, close-ups, faces shrunk to a size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.accuracy.datasets import LabelledPhoto
from bench.accuracy.variants import Variant
from face_detection.quality import quality_problem
from facerec.inference.detector import DetectedFace

STRANGER_WINDOW = 2.5  # cut-out side, in face widths: the face and some context, few neighbours
CLOSE_UP_MARGIN = 0.1  # of the face box on each side: a face that fills the frame
CLOSE_UP_SIZE = 640
BLANK_GROWTH = 1.3  # other faces are painted out with a margin: a face's box misses its hair and chin
GREY = 127
SHRINK_CANVAS = 640  # shrunk photos sit on a canvas the detector's size, so they are not scaled up again


def cut_out_strangers(photos: list[Path], locator: Variant, folder: Path) -> list[LabelledPhoto]:
    """Each face that would pass the enrolment quality gate, as a photo of its own, a person of its own.

    For photos of people nobody enrols (a team photo, a group): every face is someone different. The
    other faces of the photo are painted grey first, so that a cut-out shows one face only.
    """
    strangers = []
    for photo in photos:
        image = locator.load(photo)
        faces = locator.pipeline.detect(image)
        for index, face in enumerate(faces):
            if quality_problem(image, face, locator.pipeline.settings) is None:
                alone = _without(image, [other for other in faces if other is not face])
                path = folder / f"{Path(photo).stem}_{index:02d}.png"
                cv2.imwrite(str(path), _window(alone, face, STRANGER_WINDOW * max(face.width, face.height) / 2))
                strangers.append(LabelledPhoto(path, (f"stranger {Path(photo).name}#{index}",)))
    return strangers


def _without(image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
    painted = image.copy()
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in _grown(face.box, BLANK_GROWTH))
        painted[max(y1, 0) : y2, max(x1, 0) : x2] = GREY
    return painted


def _grown(box: tuple[float, float, float, float], factor: float) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * (factor - 1) / 2, (y2 - y1) * (factor - 1) / 2
    return x1 - dx, y1 - dy, x2 + dx, y2 + dy


def close_ups(photos: list[LabelledPhoto], locator: Variant, folder: Path) -> list[LabelledPhoto]:
    """The largest face of each photo cropped to its box plus a small margin, scaled to 640x640."""
    result = []
    for photo in photos:
        found = locator.read(photo.path)
        if found.faces:
            face = found.faces[found.largest_index()]
            image = locator.load(photo.path)
            half = (1 + 2 * CLOSE_UP_MARGIN) * max(face.width, face.height) / 2
            path = folder / f"close_up_{len(result):02d}_{photo.path.stem}.png"
            cv2.imwrite(str(path), cv2.resize(_window(image, face, half), (CLOSE_UP_SIZE, CLOSE_UP_SIZE)))
            result.append(LabelledPhoto(path, photo.faces))
    return result


def _window(image: np.ndarray, face: DetectedFace, half: float) -> np.ndarray:
    """A square around the face centre, cut at the image edges."""
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    height, width = image.shape[:2]
    x1, y1 = max(round(cx - half), 0), max(round(cy - half), 0)
    x2, y2 = min(round(cx + half), width), min(round(cy + half), height)
    return image[y1:y2, x1:x2]


def shrunk(image: np.ndarray, face: DetectedFace, target_width: int) -> np.ndarray:
    """The photo scaled so the face is target_width pixels wide, on a grey canvas the detector's size."""
    scale = target_width / face.width
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    scaled_face = DetectedFace(tuple(v * scale for v in face.box), face.score, face.landmarks * scale)
    window = _window(small, scaled_face, SHRINK_CANVAS / 2)
    canvas = np.full((SHRINK_CANVAS, SHRINK_CANVAS, 3), GREY, dtype=np.uint8)
    canvas[: window.shape[0], : window.shape[1]] = window
    return canvas
