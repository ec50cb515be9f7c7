"""clbench's basic built-in plugin: the ``mlp`` model, meta-learner ``none``, replay ``none`` and
the ``joint`` upper-bound strategy. Registered through the ``clbench`` entry-point group."""
