"""An example clbench plugin: the benchmark ``example.blobs``.

``plugin`` registers it (no torch import); ``stream`` generates the tasks.
"""
