"""How long a stage takes to start: the train stage's imports (TensorFlow, Keras, MLflow,
nextframe's model, training and tracking code) in a fresh Python process, as `dvc repro`
starts it, with TensorFlow's and Keras's unused optional packages (scikit-learn, pandas,
matplotlib, JAX) held off during their first import, and with them imported as TensorFlow and
Keras import them by default (NEXTFRAME_OPTIONAL_IMPORTS=1). The two alternate, `--rounds`
times each; each side's median is printed and, last, `ratio <default start / lean start>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

STAGE_IMPORTS = (
    "import nextframe.train, nextframe.model, nextframe.resume, nextframe.ops.tracking, "
    "nextframe.ops.registry, keras; keras.ops.zeros(1)"
)


def start_seconds(optional_imports: bool) -> float:
    """Wall seconds of one fresh process that imports what the train stage imports."""
    env = {**os.environ, "NEXTFRAME_OPTIONAL_IMPORTS": "1" if optional_imports else "0"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", STAGE_IMPORTS], env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    start_seconds(False)  # the first start reads the files off the disk; not counted
    lean, default = [], []
    for _ in range(args.rounds):
        lean.append(start_seconds(False))
        default.append(start_seconds(True))
    lean_s, default_s = statistics.median(lean), statistics.median(default)
    print(f"default start {default_s:.2f} s (optional packages imported)")
    print(f"lean start    {lean_s:.2f} s (optional packages held off)")
    print(f"ratio {default_s / lean_s:.2f}")


if __name__ == "__main__":
    main()
