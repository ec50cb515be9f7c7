"""clbench built-in plugin ``digits``: real-data task streams on scikit-learn's bundled 8x8 digits.

``permuted-digits`` (each task a fixed pixel permutation, task 0 the identity), ``rotated-digits``
(each task a rotation, bilinear, angles spread over a range) and ``split-digits`` (class-incremental
pairs of classes, one 10-way head). Inputs are 64 pixels in [0, 1] (``input_shape=(64,)``,
``sequence_steps=8``: memory models read the 8 rows); one stratified train/test split, the same for
every task. Registration is in :mod:`~clbench_digits.plugin`, the streams in :mod:`~clbench_digits.streams`.
"""
