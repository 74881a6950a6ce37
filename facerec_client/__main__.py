import sys

from facerec_client.cli import main

sys.exit(main())
