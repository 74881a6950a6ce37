"""gunicorn settings of face_detection (read from this folder, as the README runs it)."""

import os

from facerec.gunicorn_defaults import *  # noqa: F403
from facerec.gunicorn_defaults import count_from_env

bind = os.environ.get("FACE_DETECTION_BIND", "0.0.0.0:6337")
workers = count_from_env("FACE_DETECTION_WORKERS", 2)
