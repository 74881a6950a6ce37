"""gunicorn entry point: cd feature_extraction && gunicorn -w N -b 0.0.0.0:5000 wsgi:app"""

import sys

from facerec.errors import InvalidSetting, ModelUnavailable
from feature_extraction.app import create_app

try:
    app = create_app()
except (ModelUnavailable, InvalidSetting) as error:
    print(f"feature_extraction cannot start: {error}", file=sys.stderr, flush=True)
    sys.exit(3)  # gunicorn's worker boot error: the arbiter stops instead of respawning
