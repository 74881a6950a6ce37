"""Several photos per person: append photos, list them, delete a person or one photo."""

from __future__ import annotations

import base64

from flask import Blueprint, current_app, jsonify, request

from face_detection.enrolment import enrol
from facerec.auth import ADMIN, requires
from facerec.db.samples import SampleStore
from facerec.errors import BadRequest, NotFound
from facerec.web import json_body, parse_int_in_range, require_text

blueprint = Blueprint("samples", __name__)

DEFAULT_PAGE, MAX_PAGE, MAX_OFFSET = 100, 1000, 2**31 - 1


def _store() -> SampleStore:
    return current_app.extensions["store"]


def _max_chars() -> int:
    return current_app.extensions["settings"].max_field_chars


@blueprint.post("/samples")
def append_samples():
    """Like /update-samples, but each item adds a photo to its id instead of replacing them."""
    settings = current_app.extensions["settings"]
    report = enrol(json_body(), settings, current_app.extensions["pipeline"], _store(), append=True)
    return jsonify(report.to_dict())


@blueprint.get("/samples")
def list_samples():
    """A page from `offset`, or from the first photo after the cursor `after` (a page's `next`),
    which holds its place while photos are added and deleted; `offset` and `total` are null then."""
    after = request.args.get("after") or None
    if after and request.args.get("offset"):
        raise BadRequest("'offset' and 'after' cannot be combined: page by one of them", reason="offset_with_after")
    offset = _query_int("offset", 0, 0, MAX_OFFSET)
    limit = _query_int("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    sample_id = _required_id(request.args.get("id", "")) or None
    name = require_text(request.args.get("name", ""), "name", _max_chars()) or None
    key = _key_of(after, sample_id) if after else None
    page = _store().list_photos(limit, offset, key, sample_id=sample_id, name=name)
    last = page.photos[-1] if page.more else None
    return jsonify(
        total=page.total,
        offset=None if after else offset,
        limit=limit,
        samples=[p.to_dict() for p in page.photos],
        next=_cursor(last.sample_id, last.photo_id, sample_id) if last else None,
    )


# A cursor is the key of a page's last photo: base64url (no padding) of its id and photo id in
# UTF-8, NUL between them (ids hold no NUL). Listing one id, the cursor leaves that id out: an id
# may take 256 characters of 4 UTF-8 bytes, and the filter already puts it in the request line.
def _cursor(sample_id: str, photo_id: str, listed_id: str | None) -> str:
    key = ("" if sample_id == listed_id else sample_id) + "\x00" + photo_id
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _key_of(cursor: str, listed_id: str | None) -> tuple[str, str]:
    invalid = BadRequest("'after' must be a page's 'next' cursor, as returned", reason="invalid_after")
    try:
        sample_id, photo_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("\x00")
    except ValueError:  # not base64, not UTF-8, or not two parts
        raise invalid from None
    sample_id = sample_id or listed_id
    if not sample_id:
        raise invalid
    return sample_id, photo_id


@blueprint.delete("/samples")
@requires(ADMIN)
def delete_by_query():
    """DELETE /samples?id=X[&photo_id=Y]: any id, also those a path cannot hold ('/lead', 'x/photos')."""
    if "id" not in request.args:
        raise BadRequest("'id' is missing: DELETE /samples?id=...", reason="missing_id")
    photo_id = request.args.get("photo_id")  # present but empty: the photo that /update-samples writes
    if photo_id is None:
        return delete_sample(request.args["id"])
    return delete_photo(request.args["id"], photo_id)


@blueprint.delete("/samples/<path:sample_id>")
@requires(ADMIN)
def delete_sample(sample_id: str):
    removed = _store().delete(_required_id(sample_id))
    if not removed:
        raise NotFound("no sample has this id", reason="sample_not_found")
    return jsonify(id=sample_id, removed=removed)


# The photo that /update-samples writes has the empty photo id: /samples/<id>/photos/
@blueprint.delete("/samples/<path:sample_id>/photos/", defaults={"photo_id": ""})
@blueprint.delete("/samples/<path:sample_id>/photos/<photo_id>")
@requires(ADMIN)
def delete_photo(sample_id: str, photo_id: str):
    removed = _store().delete(_required_id(sample_id), require_text(photo_id, "photo_id", _max_chars()))
    if not removed:
        raise NotFound("this sample has no photo with this id", reason="photo_not_found")
    return jsonify(id=sample_id, photo_id=photo_id, removed=removed)


def _query_int(key: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(key, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        raise BadRequest(f"'{key}' must be an integer from {low} to {high}", reason=f"invalid_{key}")
    return parse_int_in_range(int(raw), key, low, high)


def _required_id(value: str) -> str:
    """A sample id as enrolment takes them: FACEREC_MAX_ID_CHARS, not the other fields' limit."""
    return require_text(value, "id", current_app.extensions["settings"].max_id_chars, "FACEREC_MAX_ID_CHARS")
