"""Application factory of the face_detection service (port 6337)."""

from __future__ import annotations

from flask import Flask

from face_detection.extra_routes import blueprint as extra_blueprint
from face_detection.extraction_client import ExtractionClient
from face_detection.openapi import SPEC
from face_detection.pipeline import FacePipeline
from face_detection.routes import blueprint
from face_detection.samples_routes import blueprint as samples_blueprint
from facerec import auth
from facerec.db.connection import Database
from facerec.db.samples import SampleStore
from facerec.inference.detector import FaceDetector
from facerec.openapi import serve_openapi
from facerec.settings import Settings, get_settings
from facerec.web import create_base_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    app = create_base_app(__name__, settings)
    detector = FaceDetector(settings)
    detector.warm_up()  # load weights and run once before this worker takes traffic
    database = Database(settings)
    app.extensions.update(
        database=database,
        store=SampleStore(database),
        pipeline=FacePipeline(settings, detector, ExtractionClient(settings)),
    )
    app.register_blueprint(blueprint)
    app.register_blueprint(extra_blueprint)
    app.register_blueprint(samples_blueprint)
    serve_openapi(app, SPEC)
    auth.install(
        app,
        auth.ApiKeys.from_settings(settings.admin_keys, settings.client_keys, settings.api_keys_file),
        "face_detection",
    )
    return app
