"""The stage scripts as a user (or DVC) runs them, with the commands dvc.yaml gives them (real
processes, tiny params): the data stages' outputs, and every stage answering a missing or
corrupt input with one line, having checked its inputs before touching its outputs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from nextframe.data.splits import sha256_of_array

from .helpers import pipeline, run_stage, stage_command, write_params

pytestmark = pytest.mark.integration


def fetch_and_preprocess(workdir: Path, params: dict) -> dict[str, str]:
    write_params(workdir, params)
    for stage in ("fetch", "preprocess"):
        result = run_stage(stage, workdir)
        assert result.returncode == 0, result.stderr
    return {
        str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((workdir / "data").rglob("*"))
        if p.is_file()
    }


def test_same_params_give_byte_identical_data(tmp_path, tiny_params):
    first = fetch_and_preprocess(tmp_path / "a", tiny_params)
    second = fetch_and_preprocess(tmp_path / "b", tiny_params)
    # raw: windows, digits, info and the index of more archives (none); processed: 3 splits,
    # digits, manifest and the index of more archives' test windows (none)
    assert len(first) == 10
    assert first == second


def test_splits_are_uint8_windows_with_a_manifest(tmp_path, tiny_params):
    fetch_and_preprocess(tmp_path, tiny_params)
    processed = tmp_path / "data" / "processed"
    manifest = json.loads((processed / "manifest.json").read_text())
    for split, count in (("train", 16), ("val", 8), ("test", 8)):
        array = np.load(processed / f"{split}.npy", allow_pickle=False)
        assert array.dtype == np.uint8 and array.shape == (count, 8, 64, 64, 1)
        assert manifest["splits"][split]["count"] == count
        assert manifest["splits"][split]["sha256"] == sha256_of_array(array)
    assert manifest["dataset"]["digest"] == manifest["splits"]["train"]["sha256"]


@pytest.fixture(scope="module")
def pipeline_outputs(trained) -> Path:
    """The session's tiny pipeline: every stage's outputs exist (copied, never changed)."""
    return trained.path


def arg(stage: str, workdir: Path, option: str) -> Path:
    """The path dvc.yaml gives `stage` for `option` (e.g. `--model`)."""
    command = stage_command(stage, workdir)
    return workdir / command[command.index(option) + 1]


def outputs(stage: str, workdir: Path) -> dict[Path, bytes]:
    """The stage's outputs as dvc.yaml declares them, with their bytes now."""
    declared = pipeline()["stages"][stage]
    paths = [
        next(iter(entry)) if isinstance(entry, dict) else entry
        for key in ("outs", "metrics")
        for entry in declared.get(key, [])
    ]
    variables = pipeline()["vars"][0]["paths"]
    found = {}
    for path in (
        workdir / re.sub(r"\$\{paths\.(\w+)\}", lambda m: variables[m[1]], p) for p in paths
    ):
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        found.update({f: f.read_bytes() for f in files if f.is_file()})
    assert found, f"{stage} has no outputs yet"
    return found


def corrupt(path: Path, how: str) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    if how == "missing":
        path.unlink(missing_ok=True)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3] if path.exists() else b"")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_text("{ this is not what it should be")


def grey_windows(path: Path, shape=(4, 8, 64, 64), dtype=np.uint8) -> None:
    np.save(path, np.zeros(shape, dtype=dtype))


# (stage, the option naming the input, how it is broken, what the line says after the path)
BAD_INPUTS = [
    ("preprocess", "--windows", "truncated", "not a readable .npy array"),
    ("preprocess", "--info", "garbage", "not readable JSON"),
    ("preprocess", "--digits", "empty", "not a readable .npy array"),
    ("train", "--manifest", "missing", "file not found"),
    ("train", "--val", "float", "expected windows (N, T, H, W, C) uint8"),
    ("evaluate", "--model", "missing", "model file not found"),
    ("evaluate", "--run-info", "garbage", "not readable JSON"),
    ("render", "--test", "rank 4", "expected windows (N, T, H, W, C) uint8"),
]


@pytest.mark.parametrize(("stage", "option", "how", "message"), BAD_INPUTS)
def test_a_missing_or_corrupt_input_is_one_line_and_the_outputs_stay(
    pipeline_outputs, tmp_path, stage, option, how, message
):
    workdir = tmp_path / "work"
    shutil.copytree(pipeline_outputs, workdir)
    before = outputs(stage, workdir)
    broken = arg(stage, workdir, option)
    if how == "rank 4":
        grey_windows(broken)
    elif how == "float":
        grey_windows(broken, (4, 8, 64, 64, 1), np.float32)
    else:
        corrupt(broken, how)
    result = run_stage(stage, workdir)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    relative = broken.relative_to(workdir)
    assert len(lines) == 1 and lines[0].startswith(f"error: {relative}: "), lines
    assert message in lines[0], lines[0]
    assert outputs(stage, workdir) == before, "inputs are checked before outputs are cleared"


def test_a_model_that_is_not_a_model_is_one_line(pipeline_outputs, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(pipeline_outputs, workdir)
    (workdir / "models" / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    result = run_stage("evaluate", workdir)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: models/model.keras: cannot load the model"), line


def test_fetch_of_a_missing_folder_is_one_line_and_the_outputs_stay(pipeline_outputs, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(pipeline_outputs, workdir)
    before = outputs("fetch", workdir)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["data"] |= {"source": "folder", "folder": "no/such/folder", "channels": 3}
    write_params(workdir, params)
    result = run_stage("fetch", workdir)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no/such/folder: no such folder (data.folder)"
    assert outputs("fetch", workdir) == before
