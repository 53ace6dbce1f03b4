"""A radar archive of any length through fetch: disk, memory and time against its frames.

Builds MeteoSwiss archives from pysteps' example files (../shared/data/pysteps-data, or
`--source`) at new times, 5 minutes apart: a short one (`--short`, default 288 frames: one
day) and a long one (`--long`, default 8,640: 30 days), each file a hard link to one of the
real ones in turn. Each is fetched as the radar preset fetches (16-frame windows, one every 2
frames) by the real fetch stage in its own process, and the benchmark prints, for both:

- fetch's disk use (its outputs: the frame store, index, placeholders) against the bytes of
  the frames it stores, and what the whole-window layout before the store took (5.1x);
- the fetch process's peak memory (and its child processes', the decoding workers): flat in
  the archive's length;
- its time per frame (linear in the length);
- an archive of `--parallel` frames (default 1,440: 5 days) fetched with one decoding process
  against one per core (2 here), a fresh cache each: the speed-up of parallel decoding (on a
  day's archive the workers' start, ~2 s each, takes what they gain);
- the short archive grown by `--added` files (default 12: an hour) and fetched again with the
  cache of the first fetch: how many files it decodes (the new ones only).

Last line: `ratio <fetch's disk use / the frames' bytes>` of the long archive.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from nextframe.presets import merged

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "pysteps-data"
START = datetime(2030, 1, 1)
STEP = timedelta(minutes=5)

# Runs the fetch stage in this process and prints its peak memory and its workers' on exit.
FETCH = """
import os, resource, runpy, sys
cores = os.environ.get("BENCH_CORES")
if cores:
    os.cpu_count = lambda: int(cores)
sys.argv = ["stages/fetch.py", *sys.argv[1:]]
try:
    runpy.run_path("stages/fetch.py", run_name="__main__")
finally:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"PEAK {own} {workers}")
"""


def mch_name(time: datetime) -> Path:
    """Where pysteps' MeteoSwiss layout puts the file of `time` (path_fmt %Y%m%d)."""
    return Path(f"{time:%Y%m%d}") / f"AQC{time:%y%j%H%M}V_00005.801.gif"


def build_archive(folder: Path, originals: list[Path], first: int, count: int) -> None:
    """Files `first` .. `first + count - 1` of an archive 5 minutes apart from START, each a
    hard link to the next original in turn (a copy where links are refused)."""
    for index in range(first, first + count):
        target = folder / "radar" / "mch" / mch_name(START + index * STEP)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = originals[index % len(originals)]
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def params_for(root: Path) -> dict:
    """The repo's params with the radar preset written over them, on `root`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    preset = yaml.safe_load((REPO / "presets" / "radar.yaml").read_text())
    return merged(merged(params, preset), {"data": {"radar": {"root": str(root)}}})


def fetch(work: Path, root: Path, downloads: Path, cores: int | None = None) -> dict:
    """The fetch stage on the archive under `root`; its figures."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "params.yaml").write_text(yaml.safe_dump(params_for(root)))
    args = ["--params", str(out / "params.yaml"), "--folder", str(REPO / "examples" / "clips")]
    args += ["--radar-root", str(root), "--downloads", str(downloads)]
    args += ["--windows", str(out / "windows.npy"), "--archives", str(out / "archives")]
    args += ["--digits", str(out / "digits.npy"), "--info", str(out / "info.json")]
    env = {**os.environ, "BENCH_CORES": str(cores or "")}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", FETCH, *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"fetch failed:\n{result.stderr}")
    peak = next(line for line in result.stdout.splitlines() if line.startswith("PEAK"))
    own_kib, workers_kib = (int(v) for v in peak.split()[1:])
    info = json.loads((out / "info.json").read_text())
    height, width = info["grid"]["shape"]
    frame_bytes = height * width
    disk = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    disk -= (out / "params.yaml").stat().st_size
    windows = sum(event["n_windows"] for event in info["events"])
    return {
        "files": info["files"],
        "decoded": info["decoded"],
        "frames_bytes": info["stored_frames"] * frame_bytes,
        "disk": disk,
        "windows_layout_bytes": windows * info["n_frames"] * frame_bytes,
        "seconds": seconds,
        "peak_mib": own_kib / 1024,
        "workers_peak_mib": workers_kib / 1024,
    }


def describe(name: str, figures: dict) -> str:
    ratio = figures["disk"] / figures["frames_bytes"]
    before = figures["windows_layout_bytes"] / figures["frames_bytes"]
    per_frame = 1000 * figures["seconds"] / figures["files"]
    return (
        f"{name}: {figures['files']} files, disk {figures['disk'] / 2**20:.1f} MiB = "
        f"{ratio:.3f}x the frames' {figures['frames_bytes'] / 2**20:.1f} MiB (whole windows: "
        f"{before:.1f}x), peak memory {figures['peak_mib']:.0f} MiB (its child processes "
        f"{figures['workers_peak_mib']:.0f} MiB), {figures['seconds']:.1f} s, "
        f"{per_frame:.1f} ms a frame, {figures['decoded']} decoded"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=SHARED, help="pysteps-data's root")
    parser.add_argument("--short", type=int, default=288, help="frames (288: one day)")
    parser.add_argument("--long", type=int, default=8640, help="frames (8,640: 30 days)")
    parser.add_argument("--added", type=int, default=12, help="files added (12: an hour)")
    parser.add_argument("--parallel", type=int, default=1440, help="frames (1,440: 5 days)")
    args = parser.parse_args()
    originals = sorted((args.source / "radar" / "mch").rglob("*.gif"))
    if not originals:
        raise SystemExit(f"no MeteoSwiss file under {args.source}/radar/mch")
    with tempfile.TemporaryDirectory(prefix="radar-archive-") as tmp:
        work = Path(tmp)
        short, long_ = work / "short", work / "long"
        build_archive(short, originals, 0, args.short)
        build_archive(long_, originals, 0, args.long)
        figures = {}
        for name, root in (("short", short), ("long", long_)):
            figures[name] = fetch(work, root, work / f"cache-{name}")
            print(describe(f"{name} ({args.__dict__[name]} frames)", figures[name]), flush=True)
        medium = work / "medium"
        build_archive(medium, originals, 0, args.parallel)
        one = fetch(work, medium, work / "cache-one", cores=1)
        two = fetch(work, medium, work / "cache-two", cores=2)
        print(
            f"parallel decoding, {args.parallel} frames: 1 process {one['seconds']:.1f} s, 2 "
            f"{two['seconds']:.1f} s: {one['seconds'] / two['seconds']:.2f}x",
            flush=True,
        )
        build_archive(short, originals, args.short, args.added)
        grown = fetch(work, short, work / "cache-short")
        print(
            f"grown by {args.added} files, fetched again with the cache: {grown['decoded']} of "
            f"{grown['files']} files decoded, {grown['seconds']:.1f} s"
        )
        per_frame = {name: figures[name]["seconds"] / figures[name]["files"] for name in figures}
        memory = figures["long"]["peak_mib"] / figures["short"]["peak_mib"]
        print(
            f"long against short: time per frame {per_frame['long'] / per_frame['short']:.2f}x, "
            f"peak memory {memory:.2f}x"
        )
        print(f"ratio {figures['long']['disk'] / figures['long']['frames_bytes']:.4f}")


if __name__ == "__main__":
    main()
