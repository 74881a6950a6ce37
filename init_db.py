#!/usr/bin/env python3
"""Create or migrate the database schema. See `python init_db.py --help`."""

import sys

from facerec.db.cli import main

if __name__ == "__main__":
    sys.exit(main())
