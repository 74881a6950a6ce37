"""Python client and `facerec` command of the face_detection service."""

from facerec_client.client import FaceRecClient, FaceRecError, image_data_uri

__all__ = ["FaceRecClient", "FaceRecError", "image_data_uri"]
