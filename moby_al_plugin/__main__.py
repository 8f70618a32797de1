"""``python -m moby_al_plugin`` runs the ``moby-al`` command."""

import sys

from .cli import main

sys.exit(main())
