"""``python -m vecq_ref`` runs the ``vecq-ref`` command line."""

import sys

from .cli import main

sys.exit(main())
