"""An example clbench plugin: the replay buffer ``example.loss-aware``.

``plugin`` registers it (no torch import, so ``clbench list`` stays light); ``buffer`` holds the
buffer itself, a plain :class:`clbench.components.ReplayBuffer` usable without the harness.
"""
