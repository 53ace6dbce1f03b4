"""Peak memory of the data pipeline: the keras-io example loads everything, nextframe streams.

No machine here reaches the real Moving MNIST file, so a synthetic one of its exact layout
((20, N, 64, 64) uint8, time-major; N = 10,000 by default, ~820 MB) is written to a temp
dir. Each side then runs in its own fresh process, which reports its own peak RSS (VmHWM):
- seed: np.load the whole file, keep 1,000 sequences, shuffle 90/10, divide by 255 (float64),
  shifted pairs, as the keras-io example does (data only: TensorFlow is not imported);
- ours: the fetch stage script (the file sits in its download cache with a matching md5, so
  it only converts the layout), then the preprocess stage script splitting the same
  1,000 sequences, each in its own process as `dvc repro` runs them.
Prints every peak and, last, `ratio <keras-io example's peak / our largest stage peak>`.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from nextframe.data.download import md5sum
from nextframe.ops.layout import pipeline_path, stage_command
from nextframe.params import REAL_FRAME_SIZE, REAL_N_FRAMES, REAL_N_SEQUENCES

REPO_ROOT = Path(__file__).resolve().parents[1]
KERAS_IO_SEQUENCES = 1_000  # the example keeps the first 1,000 sequences of the file
MIB = 1 << 20


def keras_io_pipeline(path: Path, n_keep: int) -> tuple[np.ndarray, ...]:
    """The keras-io example's data preparation (docs/keras_io_example.md): x, y train, x, y val."""
    dataset = np.load(path)  # (20, N, 64, 64) uint8, all of it in memory
    dataset = np.swapaxes(dataset, 0, 1)[:n_keep, ..., np.newaxis]  # (n_keep, 20, 64, 64, 1)
    order = np.arange(len(dataset))
    np.random.default_rng().shuffle(order)  # unseeded, as in the example
    n_train = int(0.9 * len(dataset))
    train = dataset[order[:n_train]] / 255  # float64
    val = dataset[order[n_train:]] / 255
    return train[:, :-1], train[:, 1:], val[:, :-1], val[:, 1:]


def write_real_layout(path: Path, n_sequences: int, seed: int = 0) -> None:
    """A (20, n_sequences, 64, 64) uint8 .npy, written one frame index at a time."""
    shape = (REAL_N_FRAMES, n_sequences, REAL_FRAME_SIZE, REAL_FRAME_SIZE)
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        for _ in range(REAL_N_FRAMES):
            f.write(rng.integers(0, 256, size=shape[1:], dtype=np.uint8))


def run_child(side: str, workdir: Path) -> None:
    """Run one side in this (fresh) process, then print its peak RSS in bytes."""
    if side == "keras_io":
        params = yaml.safe_load((workdir / "params.yaml").read_text())
        n_keep = sum(params["data"][f"n_{s}"] for s in ("train", "val", "test"))
        downloads = workdir / pipeline_path("downloads", REPO_ROOT)
        keras_io_pipeline(downloads / Path(params["data"]["url"]).name, n_keep)
    else:  # the stage as DVC runs it, in this process
        os.chdir(workdir)
        _, script, *args = stage_command(side, REPO_ROOT, workdir)
        sys.argv = [script, *args]
        runpy.run_path(script, run_name="__main__")
    print(f"peak_bytes {peak_rss_bytes()}")


def peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM): ru_maxrss would also count the parent's memory,
    which the child shares between fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def measure(side: str, workdir: Path) -> int:
    result = subprocess.run(
        [sys.executable, __file__, "--child", side, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"{side} failed:\n{result.stderr}")
    return int(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequences", default=REAL_N_SEQUENCES, type=int)
    sides = ("keras_io", "fetch", "preprocess")
    parser.add_argument("--child", choices=sides, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.workdir)
        return
    if not 10 <= args.sequences <= REAL_N_SEQUENCES:
        parser.error(f"--sequences must be in [10, {REAL_N_SEQUENCES}], got {args.sequences}")

    n_keep = min(KERAS_IO_SEQUENCES, args.sequences)
    with tempfile.TemporaryDirectory(prefix="preprocess_memory.") as tmp:
        workdir = Path(tmp)
        params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
        real_file = (
            workdir / pipeline_path("downloads", REPO_ROOT) / Path(params["data"]["url"]).name
        )
        real_file.parent.mkdir(parents=True)
        write_real_layout(real_file, args.sequences)
        # Same 1,000 sequences as the seed, cut into our three splits (10% val, 10% test).
        n_val = n_test = n_keep // 10
        params["data"].update(
            source="download",
            md5=md5sum(real_file),
            n_frames=REAL_N_FRAMES,
            frame_size=REAL_FRAME_SIZE,
            n_train=n_keep - n_val - n_test,
            n_val=n_val,
            n_test=n_test,
        )
        (workdir / "params.yaml").write_text(yaml.safe_dump(params))

        peaks = {side: measure(side, workdir) for side in ("keras_io", "fetch", "preprocess")}
        manifest = json.loads((workdir / pipeline_path("manifest", REPO_ROOT)).read_text())

    counts = {s: v["count"] for s, v in manifest["splits"].items()}
    print(f"file: ({REAL_N_FRAMES}, {args.sequences}, 64, 64) uint8, time-major")
    keras_io_mib = peaks["keras_io"] / MIB
    print(f"keras-io example, {n_keep} sequences as float64: {keras_io_mib:.0f} MiB peak RSS")
    print(f"fetch stage (layout conversion): {peaks['fetch'] / MIB:.0f} MiB peak RSS")
    print(f"preprocess stage, splits {counts}: {peaks['preprocess'] / MIB:.0f} MiB peak RSS")
    print(f"ratio {peaks['keras_io'] / max(peaks['fetch'], peaks['preprocess']):.1f}")


if __name__ == "__main__":
    main()
