"""nextframe: next-frame video prediction with ConvLSTMs, as a reproducible pipeline."""

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the stage logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Offline by default: MLflow's client would otherwise report usage to the internet.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The backend this environment installed: TensorFlow (`make setup`) or, in the GPU
# environment (`make setup GPU=1`), which has no TensorFlow, JAX. KERAS_BACKEND still wins.
if importlib.util.find_spec("tensorflow") is None:
    os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"

# What TensorFlow's native code writes to stderr as it loads, whatever TF_CPP_MIN_LOG_LEVEL
# says (its absl logging starts before it reads the variable): notices, not problems. A stage
# whose one line of error follows them would not be one line.
_START_UP_NOTICES = (
    "absl::InitializeLog()",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized",
    "Unable to register cu",
    "cuda drivers on your machine",
    "TF-TRT Warning",
)


@contextlib.contextmanager
def _start_up_notices_dropped():
    """stderr (the file descriptor: native code writes there) into a temp file for the block;
    then every line of it that is not a known start-up notice is written out."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not any(notice in line for notice in _START_UP_NOTICES):
                    print(line, file=sys.stderr)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs TensorFlow's first import inside `_start_up_notices_dropped`, wherever it happens
    (Keras, MLflow, a stage); then leaves the import system alone."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module):
                with _start_up_notices_dropped():
                    load(module)

            spec.loader.exec_module = exec_module
        return spec


if "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowImport())
