"""A stage's start: TensorFlow and Keras load without the optional packages nextframe never
uses through them, quietly, and those packages still import afterwards."""

from __future__ import annotations

import json
import sys

from .helpers import REPO_ROOT, run

OPTIONAL = ["jax", "matplotlib", "pandas", "sklearn"]

PROBE = f"""
import json, sys
import nextframe, keras
keras.ops.zeros(1)
during = sorted(name for name in {OPTIONAL!r} if name in sys.modules)
import sklearn.base, pandas, matplotlib.pyplot, jax
print(json.dumps({{"during": during, "backend": keras.backend.backend()}}))
"""


def test_keras_loads_without_its_unused_optional_packages_and_they_import_after():
    result = run([sys.executable, "-c", PROBE], REPO_ROOT, KERAS_BACKEND="tensorflow")
    assert json.loads(result.stdout) == {"during": [], "backend": "tensorflow"}
    assert result.stderr == ""  # TensorFlow's start-up notices dropped too


def test_keras_on_jax_keeps_jax_and_the_opt_out_keeps_them_all():
    result = run([sys.executable, "-c", PROBE], REPO_ROOT, KERAS_BACKEND="jax")
    assert json.loads(result.stdout) == {"during": ["jax"], "backend": "jax"}
    opted_out = run(
        [sys.executable, "-c", PROBE], REPO_ROOT, KERAS_BACKEND="tensorflow",
        NEXTFRAME_OPTIONAL_IMPORTS="1",
    )  # fmt: skip
    assert json.loads(opted_out.stdout)["during"] == OPTIONAL
