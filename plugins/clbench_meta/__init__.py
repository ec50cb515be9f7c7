"""clbench built-in plugin: meta-learners ``maml``, ``fomaml`` and ``reptile`` (with a MER mode).

``plugin`` registers them (no torch import); ``functional`` holds the per-task losses at given
parameters and the differentiable inner optimisers, ``maml`` and ``reptile`` the update rules,
``common`` what they share (test-time adaptation, compatibility checks).
"""
