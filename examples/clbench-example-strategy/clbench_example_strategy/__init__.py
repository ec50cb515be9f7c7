"""An example clbench plugin: the strategy ``example.lwf``, a whole learner with its own loop.

``plugin`` registers it (no torch import); ``learner`` holds the learner, a plain
:class:`clbench.components.Learner`.
"""
