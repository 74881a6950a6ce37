"""The two ways of turning a photo into face vectors that the benchmark compares, in this process.

ours: the service's FacePipeline (SCRFD at FACEREC_DET_SIZE with the padded second pass, 5-landmark
alignment) with the recogniser in-process instead of over HTTP.
original: the original code's settings: SCRFD at 160x160, one pass, the detection box resized
(stretched) to the crop size, no alignment; the same recogniser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from face_detection.pipeline import FacePipeline
from facerec.images import decode_image
from facerec.inference.detector import DETECTOR_FILE, DetectedFace, FaceDetector
from facerec.inference.recognizers import EmbeddingSpec, Recognizer
from facerec.inference.weights import resolve_buffalo_s
from facerec.settings import Settings

ORIGINAL_DET_SIZE = 160


@dataclass
class PhotoFaces:
    faces: list[DetectedFace]  # left to right
    vectors: np.ndarray  # one unit-length row per face

    def largest_index(self) -> int | None:
        """The largest face, the one enrolment keeps; None when no face was found."""
        if not self.faces:
            return None
        return max(range(len(self.faces)), key=lambda index: self.faces[index].area)

    def largest(self) -> np.ndarray | None:
        index = self.largest_index()
        return None if index is None else self.vectors[index]

    def only_largest(self) -> PhotoFaces:
        index = self.largest_index()
        return self if index is None else PhotoFaces([self.faces[index]], self.vectors[index : index + 1])


class InProcessExtraction:
    """What FacePipeline asks of feature_extraction, answered by a recogniser in this process."""

    def __init__(self, recognizer: Recognizer):
        self.recognizer = recognizer

    def spec(self) -> EmbeddingSpec:
        return self.recognizer.spec

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return self.recognizer.embed(crops)


class SinglePassScrfd:
    """insightface's SCRFD as the original ran it: one pass at a fixed input size, nothing more."""

    def __init__(self, settings: Settings, size: int):
        from insightface.model_zoo.scrfd import SCRFD

        path, _ = resolve_buffalo_s(DETECTOR_FILE, settings.detector_weights)
        self._scrfd = SCRFD(str(path))
        self._size = size
        self._threshold = settings.det_threshold

    def detect_batch(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """FaceDetector's interface, which FacePipeline calls: one image at a time, as the original."""
        return [self.predict(image) for image in images]

    def predict(self, image: np.ndarray) -> list[DetectedFace]:
        boxes, landmarks = self._scrfd.detect(image, input_size=(self._size, self._size), det_thresh=self._threshold)
        height, width = image.shape[:2]
        return [
            DetectedFace(_clip(box[:4], width, height), float(box[4]), points.astype(np.float32))
            for box, points in zip(boxes, landmarks, strict=True)
        ]


def _clip(box: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """Inside the image: the original cropped with raw boxes, which fails for faces at the edge."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))


class StretchedBoxPipeline(FacePipeline):
    """The original's crops: each detection box resized to the crop size, landmarks unused."""

    def embed(self, photos: list[tuple[np.ndarray, list[DetectedFace]]]) -> list[np.ndarray]:
        size = self.extraction.spec().crop_size
        return [self.extraction.embed(stretched_crops(image, faces, size)) for image, faces in photos]


def stretched_crops(image: np.ndarray, faces: list[DetectedFace], size: int) -> np.ndarray:
    crops = np.empty((len(faces), size, size, 3), dtype=np.uint8)
    for index, face in enumerate(faces):
        x1, y1, x2, y2 = (round(v) for v in face.box)
        crops[index] = cv2.resize(image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)], (size, size))
    return crops


@dataclass
class Variant:
    name: str
    pipeline: FacePipeline
    _photos: dict[Path, PhotoFaces] = field(default_factory=dict, repr=False)

    def read(self, path: Path) -> PhotoFaces:
        """Decode as the service does, then detect and embed; once per path."""
        if path not in self._photos:
            self._photos[path] = self.faces_in(self.load(path))
        return self._photos[path]

    def load(self, path: Path) -> np.ndarray:
        return decode_image(Path(path).read_bytes(), self.pipeline.settings.max_image_pixels)

    def faces_in(self, image: np.ndarray) -> PhotoFaces:
        faces = self.pipeline.detect(image)
        if not faces:
            return PhotoFaces([], np.empty((0, self.pipeline.extraction.spec().dim), dtype=np.float32))
        (vectors,) = self.pipeline.embed([(image, faces)])
        return PhotoFaces(faces, vectors)


def ours(settings: Settings, recognizer: Recognizer) -> Variant:
    return Variant("ours", FacePipeline(settings, FaceDetector(settings), InProcessExtraction(recognizer)))


def original(settings: Settings, recognizer: Recognizer) -> Variant:
    settings = replace(settings, det_size=ORIGINAL_DET_SIZE)
    detector = SinglePassScrfd(settings, ORIGINAL_DET_SIZE)
    return Variant("original", StretchedBoxPipeline(settings, detector, InProcessExtraction(recognizer)))
