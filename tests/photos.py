"""Faces from the photos that the installed packages ship, aligned in-process for model tests."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from facerec.inference.alignment import align_faces
from facerec.inference.detector import DetectedFace, FaceDetector
from facerec.settings import Settings


@cache
def detector() -> FaceDetector:
    return FaceDetector(Settings.from_env())


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def faces_in(path: Path) -> tuple[np.ndarray, list[DetectedFace]]:
    image = read(path)
    return image, detector().predict(image)


def aligned_crops(path: Path, size: int = 112) -> np.ndarray:
    image, faces = faces_in(path)
    return align_faces(image, [face.landmarks for face in faces], size)
