"""A small Python client of the face_detection service: one method per endpoint."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:6337"
Photo = str | Path | bytes  # a file path, a data URI, or the photo's bytes


class FaceRecError(Exception):
    """The service answered an error (status, reason, message, and the request id it logged under),
    or gave no answer (status 0: reason `unreachable`, or `timeout`, after which a write may have
    been carried out)."""

    def __init__(self, status: int, reason: str, message: str, request_id: str = ""):
        super().__init__(status, reason, message, request_id)  # all of them: the error pickles and copies
        self.status, self.reason, self.message, self.request_id = status, reason, message, request_id

    def __str__(self) -> str:
        return f"{self.message} ({self.reason}, HTTP {self.status})" if self.status else self.message


def image_data_uri(image: Photo) -> str:
    """A data URI of a photo given as a path or as bytes; data URIs pass through."""
    if isinstance(image, str) and image.startswith("data:"):
        return image
    if isinstance(image, bytes):
        data, mime = image, "image/jpeg"  # the service reads the format from the bytes, not from the type
    else:
        data, mime = Path(image).read_bytes(), mimetypes.guess_type(str(image))[0] or "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


class FaceRecClient:
    def __init__(self, base_url: str = DEFAULT_URL, api_key: str = "", timeout: float = 60.0):
        """ValueError for what no answer could fix: a URL without http(s)://, a key that is not
        ASCII (an HTTP header cannot carry it), a timeout that is not a positive number of seconds."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the service URL must start with http:// or https://, not {base_url!r}")
        if not api_key.isascii():
            raise ValueError("the API key must be ASCII")
        if not timeout > 0:
            raise ValueError(f"the timeout must be a positive number of seconds, not {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def enroll(
        self, sample_id: str, image: Photo, name: str = "", metadata: str = "", action: str = "", append: bool = False
    ) -> dict:
        """Enrol one sample from the largest face of the photo, replacing the id's photos (/update-samples),
        or with append=True adding this one to them (POST /samples); the service's report."""
        sample = {"id": sample_id, "name": name, "image": image_data_uri(image), "metadata": metadata, "action": action}
        return self._call_json("POST", "/samples" if append else "/update-samples", json=[sample])

    def recognize(self, image: Photo, min_similarity: float | None = None, top_k: int | None = None) -> list[dict]:
        return self._call_json("POST", "/face-recognition", json=self._recognition_body(image, min_similarity, top_k))

    def annotate(self, image: Photo, min_similarity: float | None = None) -> bytes:
        """The photo as JPEG, every face boxed and named."""
        body = {**self._recognition_body(image, min_similarity, None), "annotate": True}
        return self._call("POST", "/face-recognition", json=body).content

    def verify(
        self, image: Photo, other: Photo | None = None, sample_id: str | None = None, threshold: float | None = None
    ) -> dict:
        """Same person? Compare with another photo, or with an enrolled sample id."""
        if (other is None) == (sample_id is None):
            raise ValueError("give either another photo or a sample id")
        if other is not None:
            body: dict[str, Any] = {"image1": image_data_uri(image), "image2": image_data_uri(other)}
        else:
            body = {"image": image_data_uri(image), "id": sample_id}
        if threshold is not None:
            body["threshold"] = threshold
        return self._call_json("POST", "/verify", json=body)

    def detect(self, image: Photo) -> list[dict]:
        return self._call_json("POST", "/detect", json={"image": image_data_uri(image)})

    def list_samples(
        self,
        offset: int | None = None,
        limit: int = 50,
        sample_id: str | None = None,
        name: str | None = None,
        after: str | None = None,
    ) -> dict:
        """One page of enrolled samples: {"total", "offset", "limit", "samples", "next"}; the next page
        is the one `after` the cursor `next` (or at an offset, which can skip or repeat a photo while
        others are enrolled or deleted)."""
        params = {"offset": offset, "limit": limit, "id": sample_id, "name": name, "after": after}
        return self._call_json("GET", "/samples", params={k: v for k, v in params.items() if v is not None})

    def iter_samples(
        self, sample_id: str | None = None, name: str | None = None, page_size: int = 500
    ) -> Iterator[dict]:
        """Every stored photo, page by page, each exactly once while others are enrolled or deleted."""
        after = None
        while True:
            page = self.list_samples(limit=page_size, sample_id=sample_id, name=name, after=after)
            yield from page["samples"]
            after = page["next"]
            if after is None:
                return

    def delete_sample(self, sample_id: str, photo_id: str | None = None) -> dict:
        """Delete a person (needs an admin key), or one photo of theirs. The ids go in the query
        string, where any id is itself: in a path, Werkzeug reads %2F as '/'."""
        params = {"id": str(sample_id)} if photo_id is None else {"id": str(sample_id), "photo_id": photo_id}
        return self._call_json("DELETE", "/samples", params=params)

    @staticmethod
    def _recognition_body(image: Photo, min_similarity: float | None, top_k: int | None) -> dict:
        body: dict[str, Any] = {"image": image_data_uri(image)}
        if min_similarity is not None:
            body["min_distance"] = min_similarity
        if top_k is not None:
            body["top_k"] = top_k
        return body

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.exceptions.InvalidJSONError as error:  # nan or inf in a number sent
            raise ValueError(f"cannot send this request: {error}") from None
        except requests.exceptions.ReadTimeout:
            message = f"no answer from {self.base_url} within {self.timeout} s (a write may still have been done)"
            raise FaceRecError(0, "timeout", message) from None
        except requests.RequestException as error:
            raise FaceRecError(0, "unreachable", f"cannot reach {self.base_url}: {error}") from None
        if not response.ok:
            raise _error_of(response)
        return response

    def _call_json(self, method: str, path: str, **kwargs) -> Any:
        response = self._call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            message = f"{self.base_url} answered {path} with no JSON: is it the face_detection service?"
            raise FaceRecError(response.status_code, "not_json", message) from None


def _error_of(response: requests.Response) -> FaceRecError:
    request_id = response.headers.get("X-Request-Id", "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("error") or body.get("fail") or response.reason
        return FaceRecError(response.status_code, str(body.get("reason", "")), str(message), request_id)
    return FaceRecError(response.status_code, "", response.text.strip()[:200] or str(response.reason), request_id)
