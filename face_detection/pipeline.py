"""Detect, align and embed faces: the steps between a decoded photo and its vectors."""

from __future__ import annotations

import time

import numpy as np

from face_detection.extraction_client import ExtractionClient
from facerec.errors import LimitExceeded
from facerec.inference.alignment import align_faces
from facerec.inference.detector import DetectedFace, FaceDetector
from facerec.settings import Settings
from facerec.web import record_timing


class FacePipeline:
    def __init__(self, settings: Settings, detector: FaceDetector, extraction: ExtractionClient):
        self.settings = settings
        self.detector = detector
        self.extraction = extraction

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in the image, left to right; too many is a named-limit error."""
        return self.within_limit(self.detect_many([image])[0])

    def detect_many(self, images: list[np.ndarray]) -> list[list[DetectedFace]]:
        """The faces of each image, left to right, in batched detector calls; limits not checked."""
        started = time.perf_counter()
        found = self.detector.detect_batch(images)
        record_timing("detect", started)
        return [sorted(faces, key=lambda face: (face.box[0] + face.box[2], face.box[1])) for faces in found]

    def within_limit(self, faces: list[DetectedFace]) -> list[DetectedFace]:
        if len(faces) > self.settings.max_faces_per_image:
            raise LimitExceeded(
                f"{len(faces)} faces found, over the limit of {self.settings.max_faces_per_image} "
                "(setting FACEREC_MAX_FACES)",
                reason="max_faces",
            )
        return faces

    def embed(self, photos: list[tuple[np.ndarray, list[DetectedFace]]]) -> list[np.ndarray]:
        """Embed the faces of several photos in one call; one N_i x dim array per photo."""
        counts = [len(faces) for _, faces in photos]
        if sum(counts) == 0:
            return [np.empty((0, 0), dtype=np.float32) for _ in photos]
        crops = np.concatenate([self.align(image, faces) for image, faces in photos if faces])
        return np.split(self.embed_crops(crops), np.cumsum(counts)[:-1])

    def align(self, image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """The faces' crops, aligned on their landmarks at the embedding model's crop size."""
        return align_faces(image, [face.landmarks for face in faces], self.extraction.spec().crop_size)

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Aligned crops in, one feature_extraction round trip, N x dim unit vectors out."""
        started = time.perf_counter()
        vectors = self.extraction.embed(crops)
        record_timing("embed", started)
        return vectors
