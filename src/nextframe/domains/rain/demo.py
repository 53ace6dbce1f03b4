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
    "mm/h on pysteps' colour scale."
)
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
