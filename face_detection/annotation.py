"""The photo of a /face-recognition request with every face boxed and labelled."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facerec.images import encode_jpeg
from facerec.inference.detector import DetectedFace

MATCHED_COLOUR = (34, 197, 94)
UNKNOWN_COLOUR = (245, 158, 11)
LABEL_TEXT_COLOUR = (17, 24, 39)


def annotated_jpeg(image_bgr: np.ndarray, faces: list[DetectedFace], entries: list[dict]) -> bytes:
    """JPEG of the photo with each face's box (green when matched, amber when not), and who it matched."""
    photo = Image.fromarray(np.ascontiguousarray(image_bgr[:, :, ::-1]))
    draw = ImageDraw.Draw(photo)
    longest_side = max(photo.size)
    line_width = max(2, round(longest_side / 400))
    font = ImageFont.load_default(size=max(12, round(longest_side / 60)))
    for face, entry in zip(faces, entries, strict=True):
        colour = MATCHED_COLOUR if entry["matched"] else UNKNOWN_COLOUR
        draw.rectangle(face.box, outline=colour, width=line_width)
        if entry["matched"]:
            _draw_label(draw, face.box, f"{entry['name'] or entry['id']} {entry['similarity']:.2f}", colour, font)
    return encode_jpeg(photo)


def _draw_label(draw: ImageDraw.ImageDraw, box: tuple, text: str, colour: tuple, font: ImageFont.FreeTypeFont) -> None:
    """The caption on a filled band above the box, or inside its top when the box touches the top edge."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 6, bottom - top + 6
    x, y = box[0], box[1] - height
    if y < 0:
        y = box[1]
    draw.rectangle((x, y, x + width, y + height), fill=colour)
    draw.text((x + 3 - left, y + 3 - top), text, fill=LABEL_TEXT_COLOUR, font=font)
