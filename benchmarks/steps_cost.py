"""What pysteps' STEPS ensemble costs on a whole MeteoSwiss composite, on this machine's cores,
and why evaluation runs it upscaled to 2 km.

One window of the shared archive (../shared/data/pysteps-data, or `--source`): the
2015-05-15 event's frames from the `--start`th (default 16: 17:05 on, rain over much of the
domain; the 640x710 composite at 1 km, 5 minutes a frame). On it, timed one after the
other in this process (STEPS on one core, as evaluation's worker process runs it):

- STEPS of `--members` members (default 12) for `--leads` leads (default 12: one hour) on the
  1 km grid, as pysteps' settings give it;
- the same on the 2 km grid evaluation uses (`nextframe.domains.rain.ensemble`), members
  brought back to 1 km;
- scoring those members on the 1 km grid as evaluation does (CRPS, rank histogram,
  reliability and ROC area at 0.5, 1, 5 and 10 mm/h, spread), and S-PROG for scale.

Last line: `ratio <STEPS at 1 km / STEPS at 2 km>` in seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nextframe.domains.rain import ensemble, nowcast
from nextframe.domains.rain.ensemble_scores import EnsembleScores
from nextframe.motion import pysteps

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pysteps-data"
EVENT = "20150515"


def mch_window(
    source: Path, start: int, n_context: int, n_leads: int
) -> tuple[np.ndarray, np.ndarray]:
    """(context, truth) in mm/h of the event's frames from the `start`th."""
    ps = pysteps()
    files = sorted((source / "radar" / "mch" / EVENT).glob("*.gif"))
    frames = []
    for path in files[start : start + n_context + n_leads]:
        precip, _, metadata = ps.io.import_mch_gif(path, product="AQC", unit="mm", accutime=5)
        frames.append(ps.utils.conversion.to_rainrate(precip, metadata)[0])
    window = np.stack(frames)
    return window[:n_context], window[n_context:]


def timed(label: str, function, *args):
    started = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.1f} s")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SHARED)
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--context", type=int, default=4)
    parser.add_argument("--start", type=int, default=16)
    args = parser.parse_args()
    context, truth = mch_window(args.source, args.start, args.context, args.leads)
    height, width = context.shape[1:]
    print(f"window: {args.context} frames of {height}x{width} at 1 km, {args.leads} leads")
    seconds = {}
    for km in (1.0, ensemble.STEPS_PIXEL_KM):
        spec = ensemble.EnsembleSpec(args.members, 1.0, 5.0, "mch", steps_pixel_km=km)
        members, seconds[km] = timed(
            f"STEPS, {args.members} members, on the {km:g} km grid",
            ensemble.steps_ensemble,
            context,
            args.leads,
            spec,
            7,
        )
    factor = spec.upscaling()
    scores = EnsembleScores(args.members, args.leads, (0.5, 1.0, 5.0, 10.0))

    def score() -> None:
        for lead in range(args.leads):
            on_grid = ensemble.repeated(members[:, lead], factor, height, width)
            on_grid[:, np.isnan(context[-1])] = np.nan
            scores.accumulate(lead, on_grid, truth[lead])

    timed("scoring the 2 km members on the 1 km grid", score)
    timed("S-PROG (deterministic)", nowcast.sprog, context, args.leads)
    crps = [row["crps"] for row in scores.per_lead()]
    print(
        f"CRPS of the 2 km ensemble at the first and last lead: {crps[0]:.3f}, {crps[-1]:.3f} mm/h"
    )
    print(f"ratio {seconds[1.0] / seconds[ensemble.STEPS_PIXEL_KM]:.2f}")


if __name__ == "__main__":
    main()
