"""API keys: an admin role and a client role, checked before every request.

Every endpoint needs the client role unless marked @public or @requires(ADMIN); admin keys
pass wherever a client key does. Keys come as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.
With no key configured the service stays open, as the original was, and says so loudly at start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, request

from facerec.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

ADMIN, CLIENT, PUBLIC = "admin", "client", "public"
_ROLE_ATTRIBUTE = "_facerec_role"


def requires(role: str) -> Callable:
    def mark(view: Callable) -> Callable:
        setattr(view, _ROLE_ATTRIBUTE, role)
        return view

    return mark


public = requires(PUBLIC)


def split_keys(value: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in value.split(",") if key.strip())


@dataclass(frozen=True)
class ApiKeys:
    admin: tuple[str, ...] = ()
    client: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, admin_keys: str, client_keys: str, keys_file: str) -> ApiKeys:
        admin, client = split_keys(admin_keys), split_keys(client_keys)
        if keys_file:
            admin_in_file, client_in_file = _keys_from_file(Path(keys_file))
            admin, client = admin + admin_in_file, client + client_in_file
        return cls(admin, client)

    @property
    def enabled(self) -> bool:
        return bool(self.admin or self.client)

    def role_of(self, presented: str) -> str | None:
        """The presented key's role. Every key is compared, in constant time, and as SHA-256 digests
        of one length, so the timing tells neither where a guess goes wrong nor how long a key is."""
        presented_digest = _digest(presented)
        role = None
        for candidate_role, keys in ((CLIENT, self.client), (ADMIN, self.admin)):
            for key in keys:
                if hmac.compare_digest(presented_digest, _digest(key)):
                    role = candidate_role
        return role


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _keys_from_file(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The admin and client keys of {"admin": [...], "client": [...]}. A file that names no key
    stops the start, as one holding anything else does: an operator who names a keys file means
    the service to be locked, and an empty one, or one with a misspelled role, left it open."""
    where = f"FACEREC_API_KEYS_FILE {path}"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{where}: not a readable JSON file ({error})") from None
    if not isinstance(stored, dict) or not set(stored) <= {ADMIN, CLIENT}:
        raise ValueError(f'{where}: must be {{"admin": [...], "client": [...]}}, nothing else')
    keys = {role: stored.get(role, []) for role in (ADMIN, CLIENT)}
    for role, listed in keys.items():
        if not isinstance(listed, list) or not all(isinstance(key, str) and key.strip() for key in listed):
            raise ValueError(f"{where}: '{role}' must be a list of non-empty strings")
    if not any(keys.values()):
        raise ValueError(f"{where}: holds no key")
    return tuple(key.strip() for key in keys[ADMIN]), tuple(key.strip() for key in keys[CLIENT])


def presented_key() -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


def install(app: Flask, keys: ApiKeys, service: str, settings_hint: str = "") -> None:
    app.extensions["api_keys"] = keys
    if not keys.enabled:
        hint = settings_hint or "FACEREC_ADMIN_KEYS and FACEREC_CLIENT_KEYS (or FACEREC_API_KEYS_FILE)"
        log.warning("%s: no API key configured; anyone who can reach it may use every endpoint. Set %s.", service, hint)
    app.before_request(_check)


def _check() -> None:
    keys: ApiKeys = current_app.extensions["api_keys"]
    view = current_app.view_functions.get(request.endpoint or "")
    needed = getattr(view, _ROLE_ATTRIBUTE, CLIENT)
    if view is None or needed == PUBLIC or not keys.enabled:
        return
    key = presented_key()
    if not key:
        raise Unauthorized(
            "an API key is required: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'", reason="api_key_required"
        )
    role = keys.role_of(key)
    if role is None:
        raise Unauthorized("the API key is not valid", reason="invalid_api_key")
    if needed == ADMIN and role != ADMIN:
        raise Forbidden("this endpoint needs an admin key", reason="admin_key_required")
