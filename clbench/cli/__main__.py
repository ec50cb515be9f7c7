"""``python -m clbench.cli``: the command line."""

import sys

from clbench.cli.app import main

sys.exit(main())
