"""The one base class of every inference model: lazy, lock-guarded load, then predict."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

from facerec.metrics import TimedSession
from facerec.settings import Settings


class InferenceModel(ABC):
    name: str

    def __init__(self, settings: Settings):
        self.settings = settings
        self.weights_sha256 = ""
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def provider(self) -> str:
        return self._session.provider if self.loaded else "not loaded"

    @property
    def runtime(self) -> str:
        """What runs the model: onnxruntime, or torch (facenet, and the ONNX models through onnx2torch)."""
        return self._session.runtime if self.loaded else "not loaded"

    def load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is None:
                self._session = TimedSession(self._load(), self.name)

    def predict(self, inputs: Any) -> Any:
        self.load()
        return self._predict(inputs)

    def warm_up(self) -> None:
        """Load, then run the largest call this model makes, on each of its session's thread counts,
        so that the first requests pay no start-up cost and the memory is taken now."""
        self.load()
        with self._session.warming_up():
            self._run_largest_call()

    @abstractmethod
    def _load(self) -> Any:
        """Create and return the session (sets weights_sha256)."""

    @abstractmethod
    def _predict(self, inputs: Any) -> Any: ...

    @abstractmethod
    def _run_largest_call(self) -> None: ...
