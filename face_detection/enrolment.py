"""/update-samples: every item ends in 'success' or in 'fail', with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from face_detection.pipeline import FacePipeline
from facerec.db.samples import Sample, SampleStore
from facerec.errors import ApiError, BadRequest, LimitExceeded, NoFace
from facerec.images import decode_data_uri_image
from facerec.inference.detector import DetectedFace
from facerec.settings import Settings
from facerec.web import INVALID_REQUEST

TEXT_FIELDS = ("name", "metadata", "action")


@dataclass
class EnrolmentReport:
    success: list = field(default_factory=list)
    fail: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def failed(self, sample_id, error: ApiError) -> None:
        self.fail.append(sample_id)
        self.errors.append({"id": sample_id, "reason": error.reason, "message": error.message})

    def to_dict(self) -> dict:
        return {"success": self.success, "fail": self.fail, "errors": self.errors, "warnings": self.warnings}


@dataclass
class _Candidate:
    sample: Sample
    image: np.ndarray
    face: DetectedFace


def enrol(items: object, settings: Settings, pipeline: FacePipeline, store: SampleStore) -> EnrolmentReport:
    if not isinstance(items, list):
        raise BadRequest(INVALID_REQUEST, reason="expected_json_list")
    if len(items) > settings.max_samples_per_request:
        raise LimitExceeded(
            f"{len(items)} samples exceed the limit of {settings.max_samples_per_request} per request "
            "(setting FACEREC_MAX_SAMPLES)",
            reason="max_samples",
        )
    report = EnrolmentReport()
    last_index = {_raw_id(item): index for index, item in enumerate(items)}
    candidates = []
    for index, item in enumerate(items):
        sample_id = _raw_id(item)
        try:
            if sample_id is not None and last_index[sample_id] != index:
                raise BadRequest("a later item of this request has the same id", reason="duplicate_id")
            candidates.append(_prepare(item, settings, pipeline, report))
        except ApiError as error:
            if error.status >= 500:
                raise
            report.failed(sample_id, error)
    if candidates:
        _embed_and_store(candidates, pipeline, store)
        report.success.extend(c.sample.sample_id for c in candidates)
    return report


def _raw_id(item: object):
    sample_id = item.get("id") if isinstance(item, dict) else None
    return sample_id if isinstance(sample_id, (str, int)) and not isinstance(sample_id, bool) else None


def _prepare(item: object, settings: Settings, pipeline: FacePipeline, report: EnrolmentReport) -> _Candidate:
    sample = _parse_sample(item, settings.max_field_chars)
    image = decode_data_uri_image(item["image"], settings.max_image_pixels)
    faces = pipeline.detect(image)
    if not faces:
        raise NoFace("no face found in the image", reason="no_face")
    largest = max(faces, key=lambda face: face.area)
    if len(faces) > 1:
        report.warnings.append({"id": sample.sample_id, "message": f"{len(faces)} faces found; enrolled the largest"})
    return _Candidate(sample, image, largest)


def _parse_sample(item: object, max_chars: int) -> Sample:
    if not isinstance(item, dict):
        raise BadRequest("each sample must be a JSON object", reason="invalid_item")
    sample_id = _raw_id(item)
    if sample_id is None or sample_id == "":
        raise BadRequest("'id' must be a non-empty string", reason="missing_id")
    if "image" not in item:
        raise BadRequest("'image' is missing", reason="missing_image")
    values = {"sample_id": str(sample_id)}
    for name in TEXT_FIELDS:
        value = item.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadRequest(f"'{name}' must be a string", reason=f"invalid_{name}")
        values[name] = value
    for name, value in values.items():
        if len(value) > max_chars:
            raise LimitExceeded(
                f"'{name}' is longer than {max_chars} characters (setting FACEREC_MAX_FIELD_CHARS)",
                reason="max_field_chars",
            )
        if "\x00" in value:
            raise BadRequest(f"'{name}' holds a NUL character", reason="invalid_character")
    return Sample(**values)


def _embed_and_store(candidates: list[_Candidate], pipeline: FacePipeline, store: SampleStore) -> None:
    vectors = pipeline.embed([(c.image, [c.face]) for c in candidates])
    model = pipeline.extraction.spec().model
    store.upsert([(c.sample, v[0]) for c, v in zip(candidates, vectors, strict=True)], model)
