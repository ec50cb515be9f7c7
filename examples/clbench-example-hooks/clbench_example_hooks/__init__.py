"""An example clbench plugin built on the lifecycle, command and report hooks.

``plugin`` holds the hooks: during a run they record a per-task timeline (training and wall time,
the loss of every epoch, accuracies) in ``extras["timeline"]`` of the record; ``command`` adds
``clbench timeline RUN_ID``, which prints it; ``section`` adds a table to ``clbench report``.
"""
