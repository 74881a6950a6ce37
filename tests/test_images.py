"""Image decoding: data URIs only, every common format and mode, limits, clear errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from facerec.errors import InvalidImage, LimitExceeded
from facerec.images import decode_data_uri_image, decode_image, split_data_uri
from tests.conftest import PACKAGE_PHOTOS, insightface_photo

MAX = 40_000_000


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(mode: str = "RGB", size=(64, 48)) -> Image.Image:
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    array[..., 2] = 200
    return Image.fromarray(array).convert(mode)


@pytest.mark.parametrize(
    "mime", ["image/jpeg", "image/jpg", "image/png", "image/webp", "application/octet-stream", None]
)
def test_data_uri_variants(mime):
    data = encode(gradient(), "PNG")
    head = f"data:{mime};base64," if mime else "data:;base64,"
    assert split_data_uri(head + base64.b64encode(data).decode()) == data


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "../../etc/passwd",
        "file:///etc/passwd",
        "http://example.com/a.jpg",
        "data:image/png,abc",
        42,
        None,
    ],
)
def test_anything_but_a_base64_data_uri_is_refused(value):
    with pytest.raises(InvalidImage) as error:
        split_data_uri(value)
    assert error.value.reason == "not_a_data_uri"


@pytest.mark.parametrize("payload, reason", [("@@@", "invalid_base64"), ("", "empty_image"), ("abc", "invalid_base64")])
def test_bad_base64(payload, reason):
    with pytest.raises(InvalidImage) as error:
        split_data_uri("data:image/jpeg;base64," + payload)
    assert error.value.reason == reason


@pytest.mark.parametrize(
    "fmt, mode",
    [
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
        ("PNG", "RGBA"),
        ("PNG", "LA"),
        ("PNG", "P"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
    ],
)
def test_formats_and_modes_decode_to_bgr(fmt, mode):
    image = decode_image(encode(gradient(mode), fmt), MAX)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


def test_channel_order_is_bgr():
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    assert decode_image(encode(red, "PNG"), MAX)[0, 0].tolist() == [0, 0, 255]


def test_sixteen_bit_png():
    array = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20).astype(np.uint16)
    image = decode_image(encode(Image.fromarray(array), "PNG"), MAX)
    assert image.shape == (48, 64, 3) and image.max() > 200


def test_transparent_pixels_become_white():
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert decode_image(encode(clear, "PNG"), MAX)[0, 0].tolist() == [255, 255, 255]


def test_base64_with_line_breaks():
    data = encode(gradient(), "PNG")
    wrapped = base64.encodebytes(data).decode()  # a line break every 76 characters
    assert "\n" in wrapped and split_data_uri("data:image/png;base64," + wrapped) == data


def pillow_bgr(data: bytes) -> np.ndarray:
    """The reference decoding: Pillow, EXIF orientation applied, RGB to BGR."""
    rgb = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return np.asarray(rgb)[:, :, ::-1]


def textured(size=(64, 48)) -> Image.Image:
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(noise)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_honoured(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: rotate 90° clockwise to display
    data = encode(textured(), "JPEG", exif=exif)
    decoded = decode_image(data, MAX)
    assert decoded.shape == ((64, 48, 3) if orientation >= 5 else (48, 64, 3))
    assert np.array_equal(decoded, pillow_bgr(data))


def test_an_unreadable_exif_block_leaves_the_image_as_stored():
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "cam"
    data = bytearray(encode(textured(), "WEBP", exif=exif))
    tiff = data.find(b"MM\x00*")
    assert data[tiff + 10 : tiff + 12] == b"\x01\x0f"  # the first entry: Make
    data[tiff + 11] = 0x55  # now SMinSampleValue, a number holding text: Pillow's parser raised struct.error
    assert decode_image(bytes(data), MAX).shape == (48, 64, 3)


@pytest.mark.parametrize("name", ["yaoming.jpg", "players.jpg", "gdp.jpg", "t1.jpg"])
def test_photos_decode_to_the_pixels_pillow_gives(name):
    path = insightface_photo(name) if name == "t1.jpg" else PACKAGE_PHOTOS / name
    data = path.read_bytes()
    assert np.array_equal(decode_image(data, MAX), pillow_bgr(data))


def test_jpeg_cut_short_is_refused():
    data = encode(textured((256, 256)), "JPEG", quality=95)
    with pytest.raises(InvalidImage) as error:
        decode_image(data[: len(data) // 2], MAX)
    assert error.value.reason == "not_an_image"


def test_one_pixel_image():
    assert decode_image(encode(Image.new("RGB", (1, 1)), "PNG"), MAX).shape == (1, 1, 3)


@pytest.mark.parametrize(
    "data",
    [b"hello, world", b"\x00" * 100, encode(gradient(), "JPEG")[:200], b"%PDF-1.4 not an image"],
    ids=["text", "zeros", "truncated-jpeg", "pdf"],
)
def test_not_an_image(data):
    with pytest.raises(InvalidImage) as error:
        decode_image(data, MAX)
    assert error.value.reason == "not_an_image"


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("L", (30000, 30000)), "PNG", optimize=True)
    assert len(bomb) < 1_000_000
    with pytest.raises(LimitExceeded) as error:
        decode_data_uri_image("data:image/png;base64," + base64.b64encode(bomb).decode(), MAX)
    assert "FACEREC_MAX_IMAGE_PIXELS" in error.value.message
