"""buffalo_s's SCRFD-500M face detector, through insightface, on our own onnxruntime session."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facerec.inference.base import InferenceModel
from facerec.inference.sessions import OrtSession
from facerec.inference.weights import resolve_buffalo_s

DETECTOR_FILE = "scrfd_500m_bnkps.onnx"


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2, clipped to the image
    score: float
    landmarks: np.ndarray  # 5x2: eyes, nose, mouth corners

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height

    def xywh(self) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = (round(v) for v in self.box)
        return x1, y1, x2 - x1, y2 - y1


class FaceDetector(InferenceModel):
    name = "scrfd_500m"

    def _load(self) -> OrtSession:
        from insightface.model_zoo.scrfd import SCRFD

        path, self.weights_sha256 = resolve_buffalo_s(DETECTOR_FILE, self.settings.detector_weights)
        session = OrtSession(path, self.settings.device, self.settings.intra_op_threads())
        self._scrfd = SCRFD(str(path), session=session.session)
        return session

    def _warm_up_input(self) -> np.ndarray:
        return np.zeros((self.settings.det_size, self.settings.det_size, 3), dtype=np.uint8)

    def _predict(self, image: np.ndarray) -> list[DetectedFace]:
        """All faces in a BGR image, best score first.

        SCRFD misses faces that fill the frame (insightface issues 1518, 2165), so an empty first
        pass is repeated on the image centred in a canvas twice its size.
        """
        return self._detect(image, pad=0) or self._detect(image, pad=max(image.shape[:2]) // 2)

    def _detect(self, image: np.ndarray, pad: int) -> list[DetectedFace]:
        height, width = image.shape[:2]
        if pad:
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        size = self.settings.det_size
        boxes, landmarks = self._scrfd.detect(image, input_size=(size, size), det_thresh=self.settings.det_threshold)
        return [_clipped_face(box, points, pad, width, height) for box, points in zip(boxes, landmarks, strict=True)]


def _clipped_face(box: np.ndarray, points: np.ndarray, pad: int, width: int, height: int) -> DetectedFace:
    x1, y1, x2, y2 = (float(v) - pad for v in box[:4])
    clipped = (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )
    return DetectedFace(clipped, float(box[4]), points.astype(np.float32) - pad)
