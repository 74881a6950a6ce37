"""Decoding of client images: data URIs and raw bytes to BGR uint8 arrays, safely."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facerec.errors import InvalidImage, LimitExceeded

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,")
_ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"}


def split_data_uri(value: object) -> bytes:
    """Return the bytes of a base64 data URI such as ``data:image/jpeg;base64,...``.

    Anything else is refused, never read as a path or a URL.
    """
    if not isinstance(value, str):
        raise InvalidImage("'image' must be a string holding a data URI", reason="not_a_data_uri")
    match = _DATA_URI.match(value)
    if not match or not match.group("b64"):
        raise InvalidImage(
            "'image' must be a base64 data URI such as 'data:image/jpeg;base64,...'",
            reason="not_a_data_uri",
        )
    return decode_base64(value[match.end() :])


def decode_base64(text: str) -> bytes:
    try:
        data = _strict_base64(text)
    except (binascii.Error, ValueError):
        try:  # line breaks and spaces, as some encoders write them; removing them copies the text
            data = _strict_base64("".join(text.split()))
        except (binascii.Error, ValueError):
            raise InvalidImage("image data is not valid base64", reason="invalid_base64") from None
    if not data:
        raise InvalidImage("image data is empty", reason="empty_image")
    return data


def _strict_base64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode image bytes to an HxWx3 BGR uint8 array, honouring EXIF orientation.

    Pillow reads the header (format, size: the limits hold before any pixel is decoded) and
    decodes everything but colour JPEGs, the photos clients send, which OpenCV decodes straight
    to BGR with their EXIF orientation applied: the same pixels (tests/test_images.py) in half
    the time (bench/RESULTS.md), without Pillow's RGB conversion and the copies to BGR.
    """
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning (over 89 Mpx) is not our limit: the check below is.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in _ALLOWED_FORMATS:
                raise InvalidImage(f"unsupported image format {image.format}", reason="unsupported_format")
            if image.width * image.height > max_pixels:
                raise _too_many_pixels(image.width, image.height, max_pixels)
            if (decoded := _decode_colour_jpeg(image, data)) is not None:
                return decoded
            image = _upright(image)
            rgb = _to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidImage("data is not a readable image", reason="not_an_image") from None
    except Image.DecompressionBombError:  # over twice Pillow's limit: refused by Image.open itself
        raise LimitExceeded(
            f"image exceeds the limit of {max_pixels} pixels (setting FACEREC_MAX_IMAGE_PIXELS)",
            reason="max_image_pixels",
        ) from None
    array = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(array[:, :, ::-1])


def _decode_colour_jpeg(image: Image.Image, data: bytes) -> np.ndarray | None:
    """OpenCV's decoding of a colour JPEG; None for anything else, and for what OpenCV cannot
    decode (a JPEG cut short), which Pillow decodes or refuses."""
    if image.format != "JPEG" or image.mode != "RGB":
        return None
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None or sorted(decoded.shape[:2]) != sorted(image.size):
        return None
    return decoded


def _too_many_pixels(width: int, height: int, max_pixels: int) -> LimitExceeded:
    return LimitExceeded(
        f"image is {width}x{height} pixels, over the limit of {max_pixels} (setting FACEREC_MAX_IMAGE_PIXELS)",
        reason="max_image_pixels",
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        scaled = np.asarray(image, dtype=np.float64) / (257.0 if image.mode != "I" else 65535.0 / 255.0)
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_data_uri_image(value: object, max_pixels: int) -> np.ndarray:
    return decode_image(split_data_uri(value), max_pixels)


def encode_jpeg(image: Image.Image | np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a PIL image or of a BGR array."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_jpeg_data_uri(bgr: np.ndarray, quality: int = 90) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(bgr, quality)).decode("ascii")


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; as stored where that block is unreadable (a
    corrupt one raised struct.error, and Pillow's parsers raise others): the pixels are still good."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image
