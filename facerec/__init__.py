"""Shared core of the face_detection and feature_extraction services."""

__version__ = "3.0.0"
