"""clbench built-in plugin: replay buffers ``fifo``, ``reservoir``, ``prioritized``, ``class-balanced``.

``plugin`` registers them (no torch import); ``storage`` holds the shared preallocated storage,
``buffers`` the four policies. The classes are plain :class:`clbench.components.ReplayBuffer`
objects, usable without the harness.
"""
