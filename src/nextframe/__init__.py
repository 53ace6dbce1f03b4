"""nextframe: next-frame video prediction with ConvLSTMs, as a reproducible pipeline."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the stage logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
