"""Experiment trackers (TensorBoard, MLflow, Weights & Biases) as clbench loggers: see ``plugin``."""
