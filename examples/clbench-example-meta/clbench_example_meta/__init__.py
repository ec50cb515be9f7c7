"""An example clbench plugin: the meta-learner ``example.lookahead``.

``plugin`` registers it (no torch import); ``lookahead`` holds the update rule, a plain
:class:`clbench.components.MetaLearner`.
"""
