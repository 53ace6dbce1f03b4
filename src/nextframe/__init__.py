"""nextframe: next-frame video prediction with ConvLSTMs, as a reproducible pipeline."""

import importlib.util
import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the stage logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Offline by default: MLflow's client would otherwise report usage to the internet.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The backend this environment installed: TensorFlow (`make setup`) or, in the GPU
# environment (`make setup GPU=1`), which has no TensorFlow, JAX. KERAS_BACKEND still wins.
if importlib.util.find_spec("tensorflow") is None:
    os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"
