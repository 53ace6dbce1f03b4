"""What the model's own ensemble costs on a whole MeteoSwiss composite, beside pysteps' STEPS on
the same window: the issue's question, 12 members of 12 leads (one hour) on 2 cores.

The window is `steps_cost.py`'s (the 2015-05-15 event, 640x710 at 1 km, rain over much of
the domain). The model is the radar preset's network (`presets/radar.yaml`: Lagrangian, two
ConvLSTM layers of 32 on 4x4 patches), freshly built: its cost does not depend on its
weights. Timed one after the other in this process:

- the model's single forecast (`predict_rain`: the motion, the context into the rain's frame,
  the compiled rollout, each lead advected out);
- its ensemble of `--members` (`predict_rain(members=...)`: the network once, the members grown
  around its forecast by `nextframe.domains.rain.perturbed`);
- pysteps' STEPS of as many members on the 2 km grid evaluation runs it on (one core).

Last line: `ratio <the model's ensemble / STEPS>` in seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from steps_cost import SHARED, mch_window, timed  # this folder: a script's own

from nextframe.domains.rain import ensemble
from nextframe.domains.rain.forecast import predict_rain
from nextframe.domains.rain.perturbed import grown_around
from nextframe.frames import FrameFormat
from nextframe.model import build_model
from nextframe.params import parse_params
from nextframe.presets import merged

REPO = Path(__file__).resolve().parents[1]


def preset_model(leads: int):
    """The radar preset's network, untrained, predicting `leads` frames."""
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())
    preset = yaml.safe_load((REPO / "presets" / "radar.yaml").read_text())
    params = parse_params(merged(defaults, preset))
    return build_model(params.model, leads, FrameFormat.of(params.data, params.data.n_context))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SHARED)
    parser.add_argument("--members", type=int, default=12)
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--start", type=int, default=16)
    args = parser.parse_args()
    context, _ = mch_window(args.source, args.start, 4, args.leads)
    height, width = context.shape[1:]
    print(f"window: 4 frames of {height}x{width} at 1 km, {args.leads} leads")
    model = preset_model(args.leads)
    predict_rain(model, context[None, :, 288:352, 320:384], 1)  # the rollout compiled, once
    spec = ensemble.EnsembleSpec(args.members, 1.0, 5.0, "mch")
    _, single = timed("the model's forecast", predict_rain, model, context[None], args.leads)
    grow = grown_around(spec, [7])
    members, grown = timed(
        f"the model's ensemble, {args.members} members",
        lambda: predict_rain(model, context[None], args.leads, members=grow),
    )
    assert members.shape == (1, args.members, args.leads, height, width)
    print(f"  of which growing the members: {grown - single:.1f} s")
    _, steps = timed(
        f"STEPS, {args.members} members, on the {ensemble.STEPS_PIXEL_KM:g} km grid",
        ensemble.steps_ensemble,
        context,
        args.leads,
        spec,
        7,
    )
    print(f"ratio {grown / steps:.2f}")


if __name__ == "__main__":
    main()
