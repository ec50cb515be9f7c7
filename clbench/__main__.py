"""``python -m clbench`` runs the command line."""

import sys

from clbench.cli import main

sys.exit(main())
