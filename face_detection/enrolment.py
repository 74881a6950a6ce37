"""/update-samples (replace) and POST /samples (append): every item ends in 'success' or in 'fail', with the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from face_detection.pipeline import FacePipeline
from face_detection.quality import quality_problem
from facerec.db.samples import Sample, SampleStore
from facerec.errors import ApiError, BadRequest, LimitExceeded, NoFace
from facerec.images import decode_data_uri_image
from facerec.inference.detector import DetectedFace
from facerec.metrics import FACES_ENROLLED
from facerec.settings import Settings
from facerec.web import INVALID_REQUEST, require_text

TEXT_FIELDS = ("name", "metadata", "action")
# Travels in URL paths, where "." and ".." are path steps that clients and proxies resolve away.
PHOTO_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


@dataclass
class EnrolmentReport:
    success: list = field(default_factory=list)
    fail: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    photos: list | None = None  # appended photos: [{"id", "photo_id"}], in the order of success

    def stored(self, sample_id: str | int, photo_id: str) -> None:
        self.success.append(sample_id)
        if self.photos is not None:
            self.photos.append({"id": sample_id, "photo_id": photo_id})

    def failed(self, sample_id, error: ApiError, photo_id: object = None) -> None:
        self.fail.append(sample_id)
        entry = {"id": sample_id, "reason": error.reason, "message": error.message}
        if photo_id is not None:
            entry["photo_id"] = photo_id
        self.errors.append(entry)

    def to_dict(self) -> dict:
        body = {"success": self.success, "fail": self.fail, "errors": self.errors, "warnings": self.warnings}
        if self.photos is not None:
            body["photos"] = self.photos
        return body


@dataclass
class _Candidate:
    sample: Sample
    crop: np.ndarray  # the face aligned: all that is kept of its photo
    faces_found: int


def enrol(
    items: object, settings: Settings, pipeline: FacePipeline, store: SampleStore, append: bool = False
) -> EnrolmentReport:
    """Replace each id's photos with the item's (the default), or append the item as one more photo."""
    if not isinstance(items, list):
        raise BadRequest(INVALID_REQUEST, reason="expected_json_list")
    if len(items) > settings.max_samples_per_request:
        raise LimitExceeded(
            f"{len(items)} samples exceed the limit of {settings.max_samples_per_request} per request "
            "(setting FACEREC_MAX_SAMPLES)",
            reason="max_samples",
        )
    report = EnrolmentReport(photos=[] if append else None)
    failures: list[tuple[int, ApiError]] = []
    chosen: list[tuple[object, _Candidate]] = []  # (the item as sent, its face)
    last_index = {_written_row(item, append): index for index, item in enumerate(items)}
    # A detector batch of photos at a time, of which only the aligned faces are kept: 100 photos of
    # 40 Mpx, which a 32 MiB body of PNGs can hold, decode to 12 GB.
    step = pipeline.detector.batch_size
    for start in range(0, len(items), step):
        indices = range(start, min(start + step, len(items)))
        decoded = _decode(items, indices, last_index, settings, append, failures)
        found = pipeline.detect_many([image for _, _, image in decoded])
        for (index, sample, image), faces in zip(decoded, found, strict=True):
            try:
                chosen.append((items[index], _choose_face(sample, image, faces, settings, pipeline)))
            except ApiError as error:
                failures.append((index, _detached(error)))
    for index, error in sorted(failures, key=lambda failure: failure[0]):
        report.failed(_raw_id(items[index]), error, _raw_photo_id(items[index]) if append else None)
    # Ids go back as the client sent them, in "fail" as in "success": 7 stays 7.
    for item, candidate in chosen:
        if candidate.faces_found > 1:
            warning = {"id": _raw_id(item), "message": f"{candidate.faces_found} faces found; enrolled the largest"}
            if append and (photo_id := _raw_photo_id(item)) is not None:  # as errors do: which photo
                warning["photo_id"] = photo_id
            report.warnings.append(warning)
    if chosen:
        photo_ids = _embed_and_store([candidate for _, candidate in chosen], pipeline, store, append)
        for (item, _), photo_id in zip(chosen, photo_ids, strict=True):
            report.stored(_raw_id(item), photo_id)
    return report


def _raw_id(item: object):
    sample_id = item.get("id") if isinstance(item, dict) else None
    return sample_id if isinstance(sample_id, (str, int)) and not isinstance(sample_id, bool) else None


def _stored_id(item: object) -> str | None:
    """The id as stored: 7 and "7" are the same sample."""
    sample_id = _raw_id(item)
    return None if sample_id is None else str(sample_id)


def _raw_photo_id(item: object):
    return item.get("photo_id") if isinstance(item, dict) else None


def _written_row(item: object, append: bool):
    """What an item writes: its id's only row when replacing; when appending, a photo id of its own
    (None: a new random one, which no other item can share)."""
    if not append:
        return _stored_id(item)
    photo_id = _raw_photo_id(item)
    return (_stored_id(item), photo_id) if isinstance(photo_id, str) else None


def _parse_photo_id(item: object) -> str:
    """The client's photo id, which makes an append idempotent; '' for a new random one."""
    photo_id = _raw_photo_id(item)
    if photo_id is None:
        return ""
    if not isinstance(photo_id, str) or not PHOTO_ID.fullmatch(photo_id):
        message = "'photo_id' must be 1 to 64 of A-Z a-z 0-9 _ . -, not starting with ."
        raise BadRequest(message, reason="invalid_photo_id")
    return photo_id


def _decode(
    items: list,
    indices: range,
    last_index: dict,
    settings: Settings,
    append: bool,
    failures: list[tuple[int, ApiError]],
) -> list[tuple[int, Sample, np.ndarray]]:
    """Parse and decode these items; those that fail go to failures, with their index."""
    decoded = []
    for index in indices:
        item = items[index]
        try:
            row = _written_row(item, append)
            if row is not None and last_index[row] != index:
                raise BadRequest("a later item of this request has the same id", reason="duplicate_id")
            photo_id = _parse_photo_id(item) if append else ""
            sample = replace(_parse_sample(item, settings), photo_id=photo_id)
            decoded.append((index, sample, decode_data_uri_image(item["image"], settings.max_image_pixels)))
        except ApiError as error:
            if error.status >= 500:
                raise
            failures.append((index, _detached(error)))
    return decoded


def _detached(error: ApiError) -> ApiError:
    """The error without its traceback and the exceptions before it: kept in a list that the
    frames they name can reach, they made a cycle holding every decoded photo of the request, which
    only the garbage collector frees, and an idle worker does not run it: one failed item of 100
    photos of 12 Mpx left 3.6 GB in the worker."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


def _choose_face(
    sample: Sample,
    image: np.ndarray,
    faces: list[DetectedFace],
    settings: Settings,
    pipeline: FacePipeline,
) -> _Candidate:
    faces = pipeline.within_limit(faces)
    if not faces:
        raise NoFace("no face found in the image", reason="no_face")
    largest = max(faces, key=lambda face: face.area)
    if problem := quality_problem(image, largest, settings):
        raise problem
    return _Candidate(sample, pipeline.align(image, [largest])[0], faces_found=len(faces))


def _parse_sample(item: object, settings: Settings) -> Sample:
    if not isinstance(item, dict):
        raise BadRequest("each sample must be a JSON object", reason="invalid_item")
    sample_id = _raw_id(item)
    if sample_id is None or sample_id == "":
        raise BadRequest("'id' must be a non-empty string", reason="missing_id")
    if "image" not in item:
        raise BadRequest("'image' is missing", reason="missing_image")
    values = {"sample_id": require_text(str(sample_id), "id", settings.max_id_chars, "FACEREC_MAX_ID_CHARS")}
    for name in TEXT_FIELDS:
        value = item.get(name)
        values[name] = "" if value is None else require_text(value, name, settings.max_field_chars)
    return Sample(**values)


def _embed_and_store(
    candidates: list[_Candidate], pipeline: FacePipeline, store: SampleStore, append: bool
) -> list[str]:
    """Store the faces; returns the photo ids (all '' when replacing)."""
    vectors = pipeline.embed_crops(np.stack([c.crop for c in candidates]))
    model = pipeline.extraction.spec().model
    items = [(c.sample, vector) for c, vector in zip(candidates, vectors, strict=True)]
    if append:
        photo_ids = store.append(items, model)
    else:
        store.upsert(items, model)
        photo_ids = [""] * len(items)
    FACES_ENROLLED.labels("append" if append else "replace").inc(len(items))
    return photo_ids
