"""The ``clbench`` command line (Click). User errors print one line and exit with status 2.

Nothing here imports torch or Avalanche at module level: ``clbench --help``, ``list`` and
``plugins`` stay light; ``run`` imports torch when it starts a run.
"""

from clbench.cli.app import BUILTIN_COMMANDS, add_plugin_commands, cli, main, plugin_modules_in

__all__ = ["BUILTIN_COMMANDS", "add_plugin_commands", "cli", "main", "plugin_modules_in"]
