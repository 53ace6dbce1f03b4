"""Moving MNIST through video files: how far a lossy codec moves the metrics.

The pipeline's test windows (paths.test in dvc.yaml, after `make repro`) are written as one
clip per window, losslessly (FFV1 in .mkv) and lossily (MPEG-4 in .mp4, the codec of most
phone and web video), read back as `data.source: folder` reads them, and the pipeline's model
(paths.model) is scored closed loop on each exactly as the evaluate stage scores it. The FFV1
windows must equal the originals byte for byte. Prints each side's metrics and, last,
`ratio <MSE on the MPEG-4 windows / MSE on the original windows>`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from nextframe.data.export import write_clip
from nextframe.data.folder import Windowing, ingest
from nextframe.data.windows import WindowFile
from nextframe.domains.video.evaluation import evaluate_windows as evaluate
from nextframe.frames import FrameFormat
from nextframe.model import load_predictor
from nextframe.ops.layout import pipeline_path
from nextframe.params import load_params


def through_codec(windows: np.ndarray, suffix: str, folder: Path) -> np.ndarray:
    """`windows` written as one `suffix` clip each and read back by the folder source."""
    for index, window in enumerate(windows):
        write_clip(folder / suffix.strip(".") / f"window_{index:05d}{suffix}", window)
    _, t, size, _, channels = windows.shape
    out = folder / f"{suffix.strip('.')}.npy"
    ingest(folder / suffix.strip("."), out, FrameFormat(size, channels), Windowing(t, t, 1), False)
    return np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--model", default=pipeline_path("model"), type=Path)
    parser.add_argument("--test", default=pipeline_path("test"), type=Path)
    parser.add_argument("--windows", type=int, help="score only the first N test windows")
    args = parser.parse_args()
    params = load_params(args.params)
    data = params.data
    windows = WindowFile(args.test)
    original = windows[0 : args.windows or len(windows)]
    model = load_predictor(args.model, frames_of=windows)

    sides = {"original": original}
    with tempfile.TemporaryDirectory(prefix="codec_roundtrip.") as tmp:
        for suffix in (".mkv", ".mp4"):
            sides[suffix] = through_codec(original, suffix, Path(tmp))
    lossless = sides[".mkv"].tobytes() == original.tobytes()
    print(
        f"{len(original)} test windows of {original.shape[1]} frames; FFV1 byte-identical: "
        f"{lossless}"
    )
    print(
        "MPEG-4 pixel error: mean |difference| "
        f"{np.abs(sides['.mp4'].astype(int) - original).mean():.2f} of 255"
    )
    mse = {}
    for name, side in sides.items():
        report, _ = evaluate(model, side, data.n_context, data.horizon, params.evaluate.batch_size)
        scores = report["model"]
        mse[name] = scores["mse"]
        print(
            f"{name}: closed-loop MSE {scores['mse']:.2f}, SSIM {scores['ssim']:.3f}, "
            f"all-zero MSE {report['baselines']['zeros']['mse']:.2f}"
        )
    if not lossless:
        raise SystemExit("FFV1 windows differ from the originals")
    print(f"ratio {mse['.mp4'] / mse['original']:.3f}")


if __name__ == "__main__":
    main()
