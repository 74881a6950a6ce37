"""Face embedding models: aligned crops in, L2-normalised float32 vectors out."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facerec.errors import ModelUnavailable
from facerec.inference.base import InferenceModel
from facerec.inference.onnx_graphs import PixelScaling
from facerec.inference.sessions import TorchSession, create_onnx_session
from facerec.inference.weights import resolve_buffalo_s, sha256_of
from facerec.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingSpec:
    """What a caller must know to feed a model: crop size, alignment, channel order."""

    model: str
    dim: int
    crop_size: int
    default_min_similarity: float
    alignment: str = "arcface_5pt"  # insightface's 5-point template, scaled to crop_size
    channel_order: str = "BGR"

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer(InferenceModel):
    spec: EmbeddingSpec

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """crops: N x S x S x 3 uint8 BGR, aligned. Returns N x dim float32, unit length."""
        return self.predict(crops)

    def _run_largest_call(self) -> None:
        # The largest batch feature_extraction runs: the model's memory is taken before traffic, not
        # in steps as record batches arrive.
        size = self.spec.crop_size
        self.predict(np.zeros((self.settings.batch_max, size, size, 3), dtype=np.uint8))

    def _predict(self, crops: np.ndarray) -> np.ndarray:
        vectors = self._session.run_images(crops)[0].astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class ArcFaceMBF(Recognizer):
    """buffalo_s's recogniser (MobileFaceNet trained on WebFace600K) on onnxruntime."""

    name = "arcface_mbf"
    # default_min_similarity measured and explained in the README's "Thresholds"
    spec = EmbeddingSpec(model=name, dim=512, crop_size=112, default_min_similarity=0.35)
    scaling = PixelScaling(mean=127.5, scale=1 / 127.5)

    def _load(self):
        path, self.weights_sha256 = resolve_buffalo_s("w600k_mbf.onnx", self.settings.arcface_weights)
        # feature_extraction runs it one micro-batch at a time: the arena stays at one batch's size.
        return create_onnx_session(path, self.settings, self.scaling, self.name)


FACENET_FILE = "20180402-114759-vggface2.pt"


class FaceNet(Recognizer):
    """facenet-pytorch's InceptionResnetV1 with VGGFace2 weights on torch."""

    name = "facenet"
    spec = EmbeddingSpec(model=name, dim=512, crop_size=160, default_min_similarity=0.35)  # not measured here
    scaling = PixelScaling(mean=127.5, scale=1 / 128.0)  # facenet-pytorch's fixed_image_standardization

    def _load(self) -> TorchSession:
        from facenet_pytorch import InceptionResnetV1

        path = self._weights_path()
        module = InceptionResnetV1(pretrained=None, classify=False)
        try:
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
        except Exception as error:
            raise ModelUnavailable(f"{path} is not a facenet InceptionResnetV1 state dict: {error}") from None
        self.weights_sha256 = sha256_of(path)
        threads = self.settings.intra_op_threads()
        return TorchSession(module, self.settings.device, threads, self.scaling, fp16=self.settings.fp16)

    def _weights_path(self) -> Path:
        if self.settings.facenet_weights:
            path = Path(self.settings.facenet_weights).expanduser()
            if not path.is_file():
                raise ModelUnavailable(f"FACEREC_FACENET_WEIGHTS={path} does not exist")
            return path
        return _download_vggface2()


def _download_vggface2() -> Path:
    """facenet-pytorch's own download into the torch cache, for machines that are online."""
    from facenet_pytorch.models import inception_resnet_v1 as facenet

    cached = Path(facenet.get_torch_home()) / "checkpoints" / FACENET_FILE
    if not cached.is_file():
        try:
            facenet.InceptionResnetV1(pretrained="vggface2")
        except Exception as error:
            log.debug("facenet-pytorch download failed", exc_info=True)
            raise ModelUnavailable(
                f"facenet weights unavailable ({type(error).__name__}): set FACEREC_FACENET_WEIGHTS to "
                f"the path of {FACENET_FILE}, or start once on a machine that can reach GitHub so "
                f"facenet-pytorch downloads it to {cached.parent}"
            ) from None
    return cached


RECOGNIZERS: dict[str, type[Recognizer]] = {cls.name: cls for cls in (ArcFaceMBF, FaceNet)}


def create_recognizer(settings: Settings) -> Recognizer:
    try:
        return RECOGNIZERS[settings.embedding_model](settings)
    except KeyError:
        raise ModelUnavailable(
            f"unknown FACEREC_EMBEDDING_MODEL={settings.embedding_model!r}; choose one of {sorted(RECOGNIZERS)}"
        ) from None
