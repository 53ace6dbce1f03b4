"""The fetch and preprocess stage scripts as a user runs them (real processes, tiny params)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from nextframe.data.splits import sha256_of_array

from .helpers import run_stage, write_params


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
    assert len(first) == 8  # raw: sequences, digits, info; processed: 3 splits, digits, manifest
    assert first == second


def test_splits_are_uint8_with_manifest(tmp_path, tiny_params):
    fetch_and_preprocess(tmp_path, tiny_params)
    processed = tmp_path / "data" / "processed"
    manifest = yaml.safe_load((processed / "manifest.json").read_text())
    for split, count in (("train", 16), ("val", 8), ("test", 8)):
        array = np.load(processed / f"{split}.npy", allow_pickle=False)
        assert array.dtype == np.uint8 and array.shape == (count, 8, 64, 64)
        assert manifest["splits"][split]["count"] == count
        assert manifest["splits"][split]["sha256"] == sha256_of_array(array)


def _write_bad(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    good = np.zeros((4, 20, 64, 64), dtype=np.uint8)
    if kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "pickled":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "float":
        np.save(path, good.astype(np.float32))
    elif kind == "int16":
        np.save(path, np.full((4, 20, 64, 64), 300, dtype=np.int16))
    elif kind == "fortran":
        np.save(path, np.asfortranarray(good))
    elif kind == "rank":
        np.save(path, good[0])
    elif kind == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize(
    "kind", ["truncated", "pickled", "float", "int16", "fortran", "rank", "empty"]
)
def test_preprocess_refuses_bad_data_with_one_line(tmp_path, tiny_params, kind):
    write_params(tmp_path, tiny_params)
    _write_bad(tmp_path / "data" / "raw" / "sequences.npy", kind)
    (tmp_path / "data" / "raw" / "info.json").write_text('{"source": "download"}')
    result = run_stage("preprocess", tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data/raw/sequences.npy"), lines
    assert not (tmp_path / "data" / "processed").exists() or not any(
        (tmp_path / "data" / "processed").iterdir()
    )
