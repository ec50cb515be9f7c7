"""clbench: a plugin-based benchmark suite that compares continual learners.

Importing this package is cheap: it pulls in neither torch nor Avalanche. Plugin authors use
:data:`hookimpl` to mark hook implementations and :class:`Options` as the base class of a
component's options.
"""

from __future__ import annotations

import pluggy

from clbench.options import Options

__version__ = "0.1.0"
PROJECT_NAME = "clbench"

#: Marker for hook implementations: ``@hookimpl def clbench_register_models(register): ...``
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["Options", "hookimpl", "PROJECT_NAME", "__version__"]
