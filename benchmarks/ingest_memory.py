"""Ingesting a folder of your own clips: memory that does not grow with the number of clips, and
decoding close to PyAV's own speed.

Writes --clips colour H.264 MP4 clips (--frames frames of --width x --height, moving colour
shapes on a gradient, not square, so every frame is centre-cropped and resized on the way in,
the codec and sizes of everyday video), then a
second folder with ten times as many (copies). For each folder the fetch and the preprocess
stages run as `dvc repro` runs them (data.source: folder, RGB at 64x64), each in its own
process reporting its peak RSS (VmHWM); fetch's wall time gives ingest frames per second. On
the first folder's files, nextframe's decode path (PyAV with FFmpeg's scaler to the model's
frames) is timed against PyAV's bare loop (`for frame in container.decode(video=0):
frame.to_ndarray()`), best of --repeats.

Prints every figure and, last, `ratio <peak RSS at 10x / peak RSS at 1x>` (the larger of the
two stages' peaks each time).
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import yaml

from nextframe.clips import clips_of
from nextframe.frames import FrameFormat
from nextframe.ops.layout import stage_command

REPO_ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
SIZE = 64


def synthetic_clip(rng: np.random.Generator, n_frames: int, height: int, width: int):
    """Frames (T, H, W, 3) uint8: a drifting colour gradient and two moving squares."""
    rows, cols = np.mgrid[:height, :width]
    base = np.stack([rows / height, cols / width, 0.5 + 0 * rows], axis=-1) * 160
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    starts = rng.uniform(0, 1, (2, 2)) * (height - 24, width - 24)
    steps = rng.uniform(-3, 3, (2, 2))
    for t in range(n_frames):
        frame = np.roll(base, t, axis=1)
        squares = zip(starts, steps, ((255, 80, 60), (60, 200, 255)), strict=True)
        for (y, x), (dy, dx), colour in squares:
            y, x = int(y + dy * t) % (height - 24), int(x + dx * t) % (width - 24)
            frame[y : y + 24, x : x + 24] = colour
        frames[t] = frame.astype(np.uint8)
    return frames


def write_h264(path: Path, frames_rgb: np.ndarray, fps: int = 25) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames_rgb.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames_rgb:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, "rgb24")))
        container.mux(stream.encode())


def write_folder(folder: Path, n_clips: int, args) -> None:
    """Clips in train/, val/ and test/: one of every ten in val, one in test (at least one)."""
    rng = np.random.default_rng(0)
    for index in range(n_clips):
        split = {0: "val", 1: "test"}.get(index % 10, "train")
        frames = synthetic_clip(rng, args.frames, args.height, args.width)
        write_h264(folder / split / f"clip_{index:04d}.mp4", frames)


def copies(source: Path, folder: Path, times: int) -> None:
    for copy in range(times):
        for clip in sorted(source.rglob("*.mp4")):
            target = folder / clip.parent.name / f"{copy:02d}_{clip.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(clip, target)


def peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def run_child(stage: str, workdir: Path) -> None:
    """Run one stage in this fresh process as DVC runs it; print its peak RSS."""
    os.chdir(workdir)
    _, script, *stage_args = stage_command(stage, REPO_ROOT, workdir)
    sys.argv = [script, *stage_args]
    runpy.run_path(script, run_name="__main__")
    print(f"peak_bytes {peak_rss_bytes()}")


def measure(stage: str, workdir: Path) -> tuple[int, float]:
    """(peak RSS in bytes, wall seconds) of one stage in its own process."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--child", stage, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{stage} failed in {workdir}:\n{result.stderr[-2000:]}")
    return int(result.stdout.split()[-1]), seconds


def ingest(workdir: Path, folder: Path, n_frames: int) -> dict[str, float]:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(
        source="folder",
        folder=str(folder),
        channels=3,
        frame_size=SIZE,
        n_frames=n_frames,
        n_context=n_frames // 2,
        window_stride=n_frames,
    )
    workdir.mkdir(parents=True)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    fetch_peak, fetch_seconds = measure("fetch", workdir)
    preprocess_peak, _ = measure("preprocess", workdir)
    return {"fetch": fetch_peak, "preprocess": preprocess_peak, "seconds": fetch_seconds}


def decode_rates(files: list[Path], repeats: int) -> tuple[float, float]:
    """Frames per second: (PyAV's bare loop, nextframe's decode to the model's frames)."""
    fmt = FrameFormat(SIZE, 3)

    def bare() -> int:
        count = 0
        for path in files:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    frame.to_ndarray()
                    count += 1
        return count

    def ours() -> int:
        return sum(1 for path in files for clip in clips_of(path) for _ in clip.frames(fmt))

    def best(fn) -> float:
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            frames = fn()
            rates.append(frames / (time.perf_counter() - start))
        return max(rates)

    return best(bare), best(ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", default=40, type=int, help="clips at 1x (10x is ten times)")
    parser.add_argument("--frames", default=60, type=int)
    parser.add_argument("--width", default=640, type=int)
    parser.add_argument("--height", default=480, type=int)
    parser.add_argument("--window", default=20, type=int, help="data.n_frames")
    parser.add_argument("--repeats", default=3, type=int)
    parser.add_argument("--child", choices=("fetch", "preprocess"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.workdir)
        return

    if args.clips < 3:
        parser.error("--clips must be at least 3 (one each for train, val and test)")
    with tempfile.TemporaryDirectory(prefix="ingest_memory.") as tmp:
        one, ten = Path(tmp) / "one", Path(tmp) / "ten"
        write_folder(one, args.clips, args)
        copies(one, ten, 10)
        runs = {
            "1x": ingest(Path(tmp) / "work1", one, args.window),
            "10x": ingest(Path(tmp) / "work10", ten, args.window),
        }
        bare, ours = decode_rates(sorted(one.rglob("*.mp4")), args.repeats)

    print(
        f"clips: {args.clips} and {10 * args.clips} MP4s of {args.frames} frames, "
        f"{args.width}x{args.height}, read as {SIZE}x{SIZE} RGB"
    )
    for scale, n_clips in (("1x", args.clips), ("10x", 10 * args.clips)):
        figures = runs[scale]
        frames_per_second = n_clips * args.frames / figures["seconds"]
        print(
            f"{scale}: fetch peak {figures['fetch'] / MIB:.0f} MiB, preprocess peak "
            f"{figures['preprocess'] / MIB:.0f} MiB, ingest {frames_per_second:.0f} frames/s "
            "(fetch's wall time, process start included)"
        )
    print(f"decode: PyAV's bare loop {bare:.0f} frames/s, nextframe {ours:.0f} frames/s")
    print(f"decode_ratio {ours / bare:.2f}")
    peak = {scale: max(runs[scale]["fetch"], runs[scale]["preprocess"]) for scale in runs}
    print(f"ratio {peak['10x'] / peak['1x']:.3f}")


if __name__ == "__main__":
    main()
