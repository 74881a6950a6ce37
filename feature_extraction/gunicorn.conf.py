"""gunicorn settings of feature_extraction (read from this folder, as the README runs it)."""

import os

from facerec.gunicorn_defaults import *  # noqa: F403
from facerec.gunicorn_defaults import count_from_env

bind = os.environ.get("FEATURE_EXTRACTION_BIND", "127.0.0.1:5000")
workers = count_from_env("FEATURE_EXTRACTION_WORKERS", 1)
