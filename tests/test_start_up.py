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


def test_keras_on_jax_imports_jax_and_the_opt_out_holds_nothing_off(monkeypatch, tmp_path):
    """The held-off packages, decided before Keras loads, as Keras picks its backend."""
    from nextframe import _optional_imports_of

    monkeypatch.delenv("NEXTFRAME_OPTIONAL_IMPORTS", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert _optional_imports_of("keras") == ("sklearn", "pandas", "matplotlib")
    assert _optional_imports_of("tensorflow") == ()
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text('{"backend": "jax"}')
    assert "jax" not in _optional_imports_of("keras")
    (tmp_path / "keras.json").write_text('{"backend": "tensorflow"}')
    assert _optional_imports_of("tensorflow") == ("jax",)
    monkeypatch.setenv("NEXTFRAME_OPTIONAL_IMPORTS", "1")
    assert _optional_imports_of("keras") == _optional_imports_of("tensorflow") == ()
