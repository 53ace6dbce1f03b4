"""What `make demo` shows of a radar model: windows of the held-out events, whole composites,
as maps on pysteps' colour scale with lead times in minutes."""

from __future__ import annotations

from typing import Any

DEFAULT_TIMESTEP_MINUTES = 5.0  # a pipeline whose manifest says none


def timestep_of(manifest: dict) -> float:
    """Minutes between the archive's frames, as the preprocess stage's manifest records."""
    return float(manifest.get("radar", {}).get("timestep_minutes", DEFAULT_TIMESTEP_MINUTES))


ABOUT = (
    "Pick a window of a held-out radar event (the whole composite; training never saw "
    "the event), set how many frames to nowcast, and press **Predict**: rain rates in "
    "mm/h on pysteps' colour scale. Ask for ensemble members to see one of them and the "
    "chance of more than 1 and 5 mm/h at each place."
)
# Members a page may ask for: 12 of a whole MeteoSwiss composite take about 30 s on 2 cores.
MAX_MEMBERS = 12
UPLOAD_REFUSAL = (
    "a radar model's page shows the held-out events: pick one; for your own "
    "archive, `nextframe predict <archive>`"
)


def frame_shape(frames):
    """None: whole composites of the held-out events, any size."""
    return None


def window(model, window_uint8):
    """A test window in mm/h (rain codes decoded, NaN for no data)."""
    return model.frames.rain.decode_mmh(window_uint8[..., 0])


def panels(model, context, horizon, manifest) -> tuple[Any, Any, float, str]:
    """Maps on pysteps' colour scale, half size, lead times in minutes."""
    from nextframe.domains.rain.forecast import predict_rain
    from nextframe.domains.rain.render import FPS, MAP_SCALE, map_frames

    nowcast = predict_rain(model, context[None], horizon)[0]
    step = timestep_of(manifest)
    caption = (
        f"{len(context)} radar frames given ({step:g} min apart), nowcast +{step:g} to "
        f"+{horizon * step:g} min in mm/h on pysteps' colour scale (grey: no data)"
    )
    return nowcast, lambda maps, _kind: map_frames(maps, MAP_SCALE), FPS, caption


def ensemble_panels(model, context, horizon, manifest, n_members: int, seed: int):
    """The model's own ensemble of `n_members` (seeded with `seed`, as `nextframe predict
    --seed` seeds it): its first member as maps, and the maps of P(>= 1 mm/h) and
    P(>= 5 mm/h), each (L, H', W', 3) uint8, their frame rate and a caption."""
    from nextframe.domains.rain.ensemble import EnsembleSpec
    from nextframe.domains.rain.forecast import predict_rain
    from nextframe.domains.rain.perturbed import grown_around
    from nextframe.domains.rain.render import FPS, MAP_SCALE, map_frames, probability_maps

    radar = manifest.get("radar", {})
    step = timestep_of(manifest)
    pixel_km = float(radar.get("grid", {}).get("pixel_km", 1.0))
    spec = EnsembleSpec(n_members, pixel_km, step, radar.get("network", ""))
    members = predict_rain(model, context[None], horizon, members=grown_around(spec, [seed]))[0]
    caption = f"a {n_members}-member ensemble (seed {seed}) grown around the nowcast"
    return (
        map_frames(members[0], MAP_SCALE),
        probability_maps(members, step),
        FPS,
        caption,
    )
