"""`make server` refuses bad input with one line; the full server runs in tests/e2e/test_team."""

import os
import subprocess
import sys

import pytest

from nextframe.ops.processes import free_port
from nextframe.ops.server import masked

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("args", "backend_uri", "message"),
    [
        (["--port", "http"], "", "error: PORT must be a positive integer, got 'http'"),
        (
            [],
            "sqlite:///mlflow.db",
            "error: MLFLOW_BACKEND_URI must be a postgresql:// URL, got 'sqlite:///mlflow.db'",
        ),
        (
            [],
            "postgresql://team:s3cret@127.0.0.1:{closed}/mlflow",
            "error: cannot connect to the database at postgresql://team:***@127.0.0.1:{closed}"
            "/mlflow: connection failed: ...Connection refused",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, args, backend_uri, message):
    closed = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_BACKEND_URI"] = backend_uri.format(closed=closed)
    result = subprocess.run(
        [sys.executable, "-m", "nextframe.ops.server", "--dir", str(tmp_path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    start, _, end = message.format(closed=closed).partition("...")
    assert line.startswith(start) and line.endswith(end), line


def test_masked_hides_only_the_password():
    assert masked("postgresql://team:pw@db:5432/mlflow") == "postgresql://team:***@db:5432/mlflow"
    assert masked("postgresql://team@db/mlflow") == "postgresql://team@db/mlflow"
