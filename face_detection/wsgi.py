"""gunicorn entry point: cd face_detection && gunicorn -w N -b 0.0.0.0:6337 wsgi:app"""

import sys

from face_detection.app import create_app
from facerec.errors import InvalidSetting, ModelUnavailable

try:
    app = create_app()
except (ModelUnavailable, InvalidSetting) as error:
    print(f"face_detection cannot start: {error}", file=sys.stderr, flush=True)
    sys.exit(3)  # gunicorn's worker boot error: the arbiter stops instead of respawning
