"""``python -m moby_al_plugin`` runs the ``moby-al`` command."""

import sys

from .experiments.cli import main

sys.exit(main())
