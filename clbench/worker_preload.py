"""Imported once by the local sweep pool's fork server (see :func:`clbench.executors.worker_context`).

Every worker is forked from that server, so it starts with these modules loaded instead of
importing them again: torch (about 2 s here), torch._dynamo (about 2 s, which torch.optim imports
on its first use) and clbench's harness, with the installed plugins registered. Importing runs no
tensor operation and starts no thread, so forking afterwards is safe.
"""

from __future__ import annotations

import sys

while "" in sys.path:  # the server runs as `python -c`: never import from the folder the sweep started in
    sys.path.remove("")

import torch
import torch._dynamo
import torch.optim  # noqa: F401

import clbench.executors
import clbench.harness
import clbench.provenance
import clbench.training
from clbench.plugins import make_plugin_host

make_plugin_host(())  # load the installed plugins' entry points (their modules are light)
clbench.provenance.source_commit()  # the commit of the code the workers were forked with
