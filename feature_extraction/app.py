"""Application factory of the feature_extraction service (port 5000)."""

from __future__ import annotations

from flask import Flask

from facerec import auth
from facerec.inference.recognizers import create_recognizer
from facerec.openapi import serve_openapi
from facerec.settings import Settings, get_settings
from facerec.web import create_base_app
from feature_extraction.batching import MicroBatcher
from feature_extraction.openapi import SPEC
from feature_extraction.routes import blueprint


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    app = create_base_app(__name__, settings)
    recognizer = create_recognizer(settings)
    recognizer.warm_up()  # load weights and run once before this worker takes traffic
    app.extensions["recognizer"] = recognizer
    app.extensions["batcher"] = MicroBatcher(recognizer.embed, settings.batch_max, settings.batch_wait_ms)
    app.register_blueprint(blueprint)
    serve_openapi(app, SPEC)
    keys = auth.ApiKeys(client=auth.split_keys(settings.extraction_key))
    auth.install(app, keys, "feature_extraction", "FACEREC_EXTRACTION_KEY, for both services")
    return app
