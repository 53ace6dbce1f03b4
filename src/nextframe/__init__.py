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


def _backend_is_jax() -> bool:
    """Keras's own rule, before Keras is imported: KERAS_BACKEND, else keras.json's backend."""
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"] == "jax"
    home = os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras"))
    config = os.path.join(home, "keras.json")
    try:
        with open(config) as file:
            return '"jax"' in file.read()
    except OSError:
        return False


def _optional_imports_of(name: str) -> tuple[str, ...]:
    """The optional packages that TensorFlow and Keras import, each inside `try: import ...`,
    as they load, and that nextframe never uses through them: scikit-learn (Keras's sklearn
    wrappers, ~3 s), pandas (DataFrames as `fit` inputs), matplotlib (Keras's image gallery),
    JAX (TFLite's JAX converter and Keras's Orbax callback, ~1.5 s; unless Keras runs on
    JAX). Held off while that package's first import runs, they cut every stage's start by
    about 40 % (benchmarks/stage_start.py); once it has run they import as usual.
    NEXTFRAME_OPTIONAL_IMPORTS=1 lets TensorFlow and Keras import them."""
    if os.environ.get("NEXTFRAME_OPTIONAL_IMPORTS") == "1":  # Keras's sklearn wrappers...
        return ()
    unused_jax = () if _backend_is_jax() else ("jax",)
    if name == "keras":
        return ("sklearn", "pandas", "matplotlib", *unused_jax)
    return unused_jax


@contextlib.contextmanager
def _unimportable(names: tuple[str, ...]):
    """`import name` raises ImportError in the block (a None in sys.modules does that), for
    each name not already imported."""
    held_off = [name for name in names if name not in sys.modules]
    for name in held_off:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in held_off:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


class _LeanQuietImport(importlib.abc.MetaPathFinder):
    """Runs the first import of TensorFlow inside `_start_up_notices_dropped`, and those of
    TensorFlow and Keras without their unused optional packages, wherever the import happens
    (Keras, MLflow, a stage); then leaves the import system alone."""

    def __init__(self, names: set[str]) -> None:
        self.pending = names

    def find_spec(self, name, path=None, target=None):
        if name not in self.pending:
            return None
        self.pending.discard(name)
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module
            optional = _optional_imports_of(name)
            quiet = _start_up_notices_dropped if name == "tensorflow" else contextlib.nullcontext

            def exec_module(module):
                with quiet(), _unimportable(optional):
                    load(module)

            spec.loader.exec_module = exec_module
        return spec


if _first_imports := {name for name in ("tensorflow", "keras") if name not in sys.modules}:
    sys.meta_path.insert(0, _LeanQuietImport(_first_imports))
