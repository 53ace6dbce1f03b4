"""Precipitation nowcasts drawn the way the field draws them: pysteps' rain-rate colour scale.

Rain in mm/h is coloured by pysteps' 'intensity' scale (16 classes from 0.08 to 160 mm/h, dark
red above); dry pixels are white, as pysteps leaves them, and pixels outside the radar's domain
(NaN) mid grey. The animation and the still grid put the observed truth beside each forecast,
with lead times in minutes and a colour bar of the levels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from functools import cache
from io import StringIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nextframe.errors import NextframeError
from nextframe.render import text_font, text_line_height, text_size

DRY_RGB = (255, 255, 255)  # pysteps draws rain below its first level transparent, on white
OUTSIDE_RGB = (128, 128, 128)  # matplotlib's "gray": pysteps' colour for missing data
BLANK_RGB = (236, 236, 236)  # a forecast panel before the forecast starts
PAGE_RGB = (255, 255, 255)
TEXT_RGB = (20, 20, 20)
FRAME_RGB = (60, 60, 60)  # the thin line around each map
OBSERVED_RGB = (20, 130, 50)  # time label of an observed (context) frame
FORECAST_RGB = (190, 30, 30)  # time label of a forecast (lead) frame
TRUTH_NAME = "truth"
# A composite is drawn at half its pixels (a 640x710 map: 320x355 a panel), 2 frames a second.
MAP_SCALE = 0.5
FPS = 2


@dataclass(frozen=True)
class ColourScale:
    """pysteps' mm/h levels and a lookup table indexed by `np.searchsorted(levels, x, 'right')`:
    0 dry, 1..n_levels - 1 the classes, n_levels above the top level, n_levels + 1 NaN."""

    levels_mmh: np.ndarray
    labels: tuple[str, ...]
    lut_rgb: np.ndarray


@cache
def colour_scale() -> ColourScale:
    """Build pysteps' intensity scale once (its import is slow and prints its config path)."""
    with redirect_stdout(StringIO()), warnings.catch_warnings():
        # pysteps' own colour map calls set_under, which matplotlib plans to deprecate.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        from pysteps.visualization.precipfields import get_colormap

        cmap, norm, clevs, clevs_str = get_colormap("intensity", "mm/h", "pysteps")
    levels_mmh = np.asarray(clevs, dtype=np.float32)
    midpoints = (levels_mmh[:-1] + levels_mmh[1:]) / 2
    classes_rgb = np.asarray(cmap(norm(midpoints)))[:, :3]
    over_rgb = np.asarray(cmap.get_over())[:3]
    lut = np.vstack(
        [
            np.asarray(DRY_RGB) / 255,
            classes_rgb,
            over_rgb,
            np.asarray(OUTSIDE_RGB) / 255,
        ]
    )
    lut_rgb = np.rint(lut * 255).astype(np.uint8)
    return ColourScale(levels_mmh, tuple(str(label) for label in clevs_str), lut_rgb)


def precip_rgb(rain_mmh: np.ndarray) -> np.ndarray:
    """(..., H, W) rain rate in mm/h, NaN outside the radar's domain -> (..., H, W, 3) uint8."""
    rain_mmh = np.asarray(rain_mmh)
    if rain_mmh.ndim < 2 or not np.issubdtype(rain_mmh.dtype, np.number):
        raise NextframeError(
            f"radar render: rain must be numbers with at least 2 axes (..., H, W), "
            f"got {rain_mmh.dtype} {rain_mmh.shape}"
        )
    scale = colour_scale()
    rain_mmh = rain_mmh.astype(np.float32, copy=False)
    # NaN sorts after every level, so searchsorted puts it in the "above the top" class: move it.
    index = np.searchsorted(scale.levels_mmh, rain_mmh, side="right").astype(np.uint8)
    index[np.isnan(rain_mmh)] = len(scale.lut_rgb) - 1
    return scale.lut_rgb[index]


def _resample(frames: np.ndarray, scale: float) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes by `scale` (up or down): categorical
    colours stay exact, and no rain is averaged with the NaN outside the domain."""
    height, width = frames.shape[-2:]
    out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
    rows = ((np.arange(out_h) + 0.5) * height / out_h).astype(np.intp)
    cols = ((np.arange(out_w) + 0.5) * width / out_w).astype(np.intp)
    return frames.take(rows, axis=-2).take(cols, axis=-1)


def _check_inputs(
    context_mmh: np.ndarray,
    truth_mmh: np.ndarray,
    forecasts: dict[str, np.ndarray],
    timestep_minutes: float,
    scale: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The arrays as float32, or one NextframeError naming what is wrong."""

    def frames(value: np.ndarray, name: str) -> np.ndarray:
        array = np.asarray(value)
        if array.ndim != 3 or 0 in array.shape or not np.issubdtype(array.dtype, np.number):
            raise NextframeError(
                f"radar render: {name} must be rain in mm/h shaped (frames, H, W), "
                f"got {array.dtype} {array.shape}"
            )
        return array.astype(np.float32, copy=False)

    context = frames(context_mmh, "context")
    truth = frames(truth_mmh, "truth")
    if context.shape[1:] != truth.shape[1:]:
        raise NextframeError(
            f"radar render: context maps {context.shape[1:]} differ from truth maps "
            f"{truth.shape[1:]}"
        )
    checked = {}
    for name, forecast in forecasts.items():
        if name == TRUTH_NAME:
            raise NextframeError(f"radar render: a forecast may not be named {TRUTH_NAME!r}")
        checked[name] = frames(forecast, f"forecast {name!r}")
        if checked[name].shape != truth.shape:
            raise NextframeError(
                f"radar render: forecast {name!r} is {checked[name].shape}, "
                f"truth is {truth.shape}: they must match"
            )
    if not timestep_minutes > 0:
        raise NextframeError(
            f"radar render: timestep_minutes must be positive, got {timestep_minutes}"
        )
    if not scale > 0:
        raise NextframeError(f"radar render: scale must be positive, got {scale}")
    return context, truth, checked


def _minutes_label(minutes: float) -> str:
    """'-15 min', '0 min', '+5 min'."""
    if minutes == 0:
        return "0 min"
    return f"{minutes:+g} min"


def _label_font(tile_w: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Text grows with the maps (13 px up to 24 px), so it reads at any scale."""
    return text_font(min(6, max(1, tile_w // 80)))


def _colour_bar(height: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> np.ndarray:
    """A vertical legend (H, W, 3): the classes bottom to top, each level at its lower edge,
    the class above the top level, and a 'no data' swatch; at least `height` tall."""
    scale = colour_scale()
    line_h = text_line_height(font)
    pad = max(4, line_h // 2)
    n_boxes = len(scale.levels_mmh)  # the classes plus the one above the top level
    title_h = line_h + pad
    legend_h = pad + line_h  # gap then the 'no data' swatch
    box_h = max(line_h // 2 + 1, (height - 2 * pad - title_h - legend_h - line_h // 2) // n_boxes)
    # Boxes shorter than a line of text: label only every other (or third...) level.
    label_every = -(-(line_h + 2) // box_h)
    box_w = max(12, line_h)
    labels = [*scale.labels, "no data"]
    label_w = max(text_size(label, font)[0] for label in labels)
    out_w = pad + box_w + pad // 2 + label_w + pad
    bar_top = pad + title_h
    bar_bottom = bar_top + n_boxes * box_h
    out_h = max(height, bar_bottom + line_h // 2 + legend_h + pad)

    image = Image.new("RGB", (out_w, out_h), PAGE_RGB)
    draw = ImageDraw.Draw(image)
    draw.text((pad, pad), "mm/h", TEXT_RGB, font)
    for box in range(n_boxes):
        y_low = bar_bottom - box * box_h
        draw.rectangle(
            (pad, y_low - box_h, pad + box_w - 1, y_low - 1), tuple(scale.lut_rgb[box + 1])
        )
        if box % label_every:
            continue
        label = scale.labels[box]
        draw.text((pad + box_w + pad // 2, y_low - line_h // 2 - 1), label, TEXT_RGB, font)
    draw.rectangle((pad, bar_top, pad + box_w - 1, bar_bottom - 1), outline=FRAME_RGB)
    no_data_y = bar_bottom + line_h // 2 + pad
    draw.rectangle((pad, no_data_y, pad + box_w - 1, no_data_y + line_h - 1), OUTSIDE_RGB)
    draw.text((pad + box_w + pad // 2, no_data_y), "no data", TEXT_RGB, font)
    return np.asarray(image).copy()


def _framed(canvas: np.ndarray, tile_rgb: np.ndarray, y: int, x: int) -> None:
    """Paste a map at (y, x) with a one-pixel line around it (dry white meets white page)."""
    tile_h, tile_w = tile_rgb.shape[:2]
    canvas[y - 1 : y + tile_h + 1, x - 1 : x + tile_w + 1] = FRAME_RGB
    canvas[y : y + tile_h, x : x + tile_w] = tile_rgb


def _centred_x(x: int, width: int, text: str, font) -> int:
    return x + (width - text_size(text, font)[0]) // 2


def nowcast_frames(
    context_mmh: np.ndarray,
    truth_mmh: np.ndarray,
    forecasts: dict[str, np.ndarray],
    timestep_minutes: float,
    scale: float = 1.0,
) -> np.ndarray:
    """One animation (T + L, H', W', 3) uint8: the truth panel then each forecast, side by side.

    context (T, H, W) and truth (L, H, W) are observed, each forecast (L, H, W) predicts the
    truth; all in mm/h with NaN outside the domain. Context frames are labelled '-15 min' ...
    '0 min' and the forecast panels are blank for them; lead frames '+5 min' ...
    """
    context, truth, checked = _check_inputs(
        context_mmh, truth_mmh, forecasts, timestep_minutes, scale
    )
    n_context, horizon = len(context), len(truth)
    observed_rgb = precip_rgb(_resample(np.concatenate([context, truth]), scale))
    forecasts_rgb = [precip_rgb(_resample(forecast, scale)) for forecast in checked.values()]
    names = [TRUTH_NAME, *checked]
    tile_h, tile_w = observed_rgb.shape[1:3]

    font = _label_font(tile_w)
    line_h = text_line_height(font)
    pad = max(4, line_h // 2)
    gap = 2 * pad
    panels_y = pad + line_h + pad + line_h + pad
    panel_x = [gap + index * (tile_w + gap) for index in range(len(names))]
    bar_rgb = _colour_bar(tile_h + 2, font)
    bar_x = panel_x[-1] + tile_w + gap
    out_w = bar_x + bar_rgb.shape[1] + pad
    out_h = max(panels_y + tile_h + pad + 1, panels_y - 1 + bar_rgb.shape[0] + pad)

    # Names, the legend and the blank forecast panels are the same in every context frame.
    template = Image.new("RGB", (out_w, out_h), PAGE_RGB)
    draw = ImageDraw.Draw(template)
    for x, name in zip(panel_x, names, strict=True):
        draw.text((_centred_x(x, tile_w, name, font), pad + line_h + pad), name, TEXT_RGB, font)
    template_rgb = np.asarray(template).copy()
    template_rgb[panels_y - 1 : panels_y - 1 + bar_rgb.shape[0], bar_x : out_w - pad] = bar_rgb
    waiting_rgb = template_rgb.copy()
    blank_tile = np.empty((tile_h, tile_w, 3), dtype=np.uint8)
    blank_tile[:] = BLANK_RGB
    for x in panel_x[1:]:
        _framed(waiting_rgb, blank_tile, panels_y, x)
    waiting = Image.fromarray(waiting_rgb)
    waiting_draw = ImageDraw.Draw(waiting)
    note = "forecast starts at 0 min"
    if text_size(note, font)[0] <= tile_w:
        for x in panel_x[1:]:
            y = panels_y + (tile_h - line_h) // 2
            waiting_draw.text((_centred_x(x, tile_w, note, font), y), note, FRAME_RGB, font)
    waiting_rgb = np.asarray(waiting).copy()

    frames_rgb = np.empty((n_context + horizon, out_h, out_w, 3), dtype=np.uint8)
    for t in range(n_context + horizon):
        step = t - n_context
        canvas = (waiting_rgb if step < 0 else template_rgb).copy()
        _framed(canvas, observed_rgb[t], panels_y, panel_x[0])
        if step >= 0:
            for x, forecast_rgb in zip(panel_x[1:], forecasts_rgb, strict=True):
                _framed(canvas, forecast_rgb[step], panels_y, x)
        image = Image.fromarray(canvas)
        minutes = (step + 1) * timestep_minutes
        if step < 0:
            label, colour = f"{_minutes_label(minutes)}  observed", OBSERVED_RGB
        else:
            label, colour = f"{_minutes_label(minutes)}  forecast", FORECAST_RGB
        ImageDraw.Draw(image).text((panel_x[0], pad), label, colour, font)
        frames_rgb[t] = np.asarray(image)
    return frames_rgb


def nowcast_grid(
    context_mmh: np.ndarray,
    truth_mmh: np.ndarray,
    forecasts: dict[str, np.ndarray],
    timestep_minutes: float,
    leads_to_show: Sequence[int],
    scale: float,
) -> np.ndarray:
    """A still (H', W', 3) uint8: rows truth then each forecast; columns the last observed
    frame (0 min) then the chosen lead steps (1-based: 1, 6, 12 = +5, +30, +60 min at 5 min)."""
    context, truth, checked = _check_inputs(
        context_mmh, truth_mmh, forecasts, timestep_minutes, scale
    )
    horizon = len(truth)
    leads = list(leads_to_show)
    if not leads or not all(
        isinstance(lead, int | np.integer) and 1 <= lead <= horizon for lead in leads
    ):
        raise NextframeError(
            f"radar render: leads_to_show must be lead steps from 1 to {horizon}, got {leads}"
        )
    steps = [lead - 1 for lead in leads]
    rows_rgb = [precip_rgb(_resample(np.concatenate([context[-1:], truth[steps]]), scale))]
    rows_rgb += [precip_rgb(_resample(forecast[steps], scale)) for forecast in checked.values()]
    names = [TRUTH_NAME, *checked]
    tile_h, tile_w = rows_rgb[0].shape[1:3]

    font = _label_font(tile_w)
    line_h = text_line_height(font)
    pad = max(4, line_h // 2)
    gap = pad
    name_w = max(text_size(name, font)[0] for name in names) + 2 * pad
    header_h = pad + line_h + pad
    column_x = [name_w + index * (tile_w + gap) for index in range(len(leads) + 1)]
    row_y = [header_h + index * (tile_h + gap) for index in range(len(names))]
    block_h = row_y[-1] + tile_h - header_h
    bar_rgb = _colour_bar(block_h + 2, font)
    bar_x = column_x[-1] + tile_w + 2 * gap
    out_w = bar_x + bar_rgb.shape[1] + pad
    out_h = max(row_y[-1] + tile_h + pad + 1, header_h - 1 + bar_rgb.shape[0] + pad)

    canvas = np.empty((out_h, out_w, 3), dtype=np.uint8)
    canvas[:] = PAGE_RGB
    canvas[header_h - 1 : header_h - 1 + bar_rgb.shape[0], bar_x : out_w - pad] = bar_rgb
    blank_tile = np.empty((tile_h, tile_w, 3), dtype=np.uint8)
    blank_tile[:] = BLANK_RGB
    for row, (y, tiles_rgb) in enumerate(zip(row_y, rows_rgb, strict=True)):
        # The truth row starts with the last observed map; forecasts have nothing at 0 min.
        tiles = list(tiles_rgb) if row == 0 else [blank_tile, *tiles_rgb]
        for x, tile_rgb in zip(column_x, tiles, strict=True):
            _framed(canvas, tile_rgb, y, x)

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    minutes = [0, *(lead * timestep_minutes for lead in leads)]
    for column, (x, minute) in enumerate(zip(column_x, minutes, strict=True)):
        label = _minutes_label(minute)
        colour = OBSERVED_RGB if column == 0 else FORECAST_RGB
        draw.text((_centred_x(x, tile_w, label, font), pad), label, colour, font)
    for y, name in zip(row_y, names, strict=True):
        draw.text((pad, y + (tile_h - line_h) // 2), name, TEXT_RGB, font)
    return np.asarray(image).copy()


def nowcast_sequence(
    context_mmh: np.ndarray, nowcast_mmh: np.ndarray, timestep_minutes: float, scale: float = 1.0
) -> np.ndarray:
    """One map a frame (T + L, H', W', 3) uint8, for a nowcast with no truth to show beside it
    (`nextframe predict`): the observed context, then the forecast, each frame labelled with
    its time in minutes, the colour bar beside it."""
    context, nowcast, _ = _check_inputs(context_mmh, nowcast_mmh, {}, timestep_minutes, scale)
    maps_rgb = precip_rgb(_resample(np.concatenate([context, nowcast]), scale))
    tile_h, tile_w = maps_rgb.shape[1:3]
    font = _label_font(tile_w)
    line_h = text_line_height(font)
    pad = max(4, line_h // 2)
    map_y, map_x = pad + line_h + pad, 2 * pad
    bar_rgb = _colour_bar(tile_h + 2, font)
    bar_x = map_x + tile_w + 2 * pad
    out_w = bar_x + bar_rgb.shape[1] + pad
    out_h = max(map_y + tile_h + pad + 1, map_y - 1 + bar_rgb.shape[0] + pad)
    template = np.empty((out_h, out_w, 3), dtype=np.uint8)
    template[:] = PAGE_RGB
    template[map_y - 1 : map_y - 1 + bar_rgb.shape[0], bar_x : out_w - pad] = bar_rgb
    frames_rgb = np.empty((len(maps_rgb), out_h, out_w, 3), dtype=np.uint8)
    for t, map_rgb in enumerate(maps_rgb):
        canvas = template.copy()
        _framed(canvas, map_rgb, map_y, map_x)
        image = Image.fromarray(canvas)
        step = t - len(context)
        minutes = (step + 1) * timestep_minutes
        observed = step < 0
        label = f"{_minutes_label(minutes)}  {'observed' if observed else 'forecast'}"
        colour = OBSERVED_RGB if observed else FORECAST_RGB
        ImageDraw.Draw(image).text((map_x, pad), label, colour, font)
        frames_rgb[t] = np.asarray(image)
    return frames_rgb


PROBABILITY_RGB = (8, 48, 107)  # a probability of 1 (0: white), as matplotlib's "Blues" ends


def probability_rgb(probability: np.ndarray) -> np.ndarray:
    """(..., H, W) in [0, 1], NaN outside the domain -> (..., H, W, 3) uint8: white to dark
    blue, outside grey."""
    p = np.clip(np.nan_to_num(probability, nan=0.0), 0.0, 1.0)[..., None]
    page, full = np.asarray(PAGE_RGB, np.float32), np.asarray(PROBABILITY_RGB, np.float32)
    out = np.rint(page + p * (full - page)).astype(np.uint8)
    out[np.isnan(probability)] = OUTSIDE_RGB
    return out


def probability_sequence(
    probabilities: np.ndarray,
    thresholds_mmh: Sequence[float],
    timestep_minutes: float,
    scale: float = 1.0,
) -> np.ndarray:
    """One image a lead (L, H', W', 3) uint8: the exceedance probability of each threshold
    (K, L, H, W) side by side, titled `P(>= 1 mm/h)`, each frame labelled with its lead time,
    a 0 to 100 % bar below."""
    n_panels, n_leads = probabilities.shape[:2]
    tiles = probability_rgb(
        np.stack([_resample(panel.astype(np.float32), scale) for panel in probabilities])
    )
    tile_h, tile_w = tiles.shape[2:4]
    font = _label_font(tile_w)
    line_h = text_line_height(font)
    pad = max(4, line_h // 2)
    map_y = pad + 2 * (line_h + pad)
    bar_y = map_y + tile_h + 2 * pad
    out_w = pad + n_panels * (tile_w + 2 * pad)
    out_h = bar_y + line_h + pad + line_h + pad
    image = Image.new("RGB", (out_w, out_h), PAGE_RGB)
    draw = ImageDraw.Draw(image)
    for k, threshold in enumerate(thresholds_mmh):
        x = 2 * pad + k * (tile_w + 2 * pad)
        title = f"P(>= {threshold:g} mm/h)"
        draw.text((_centred_x(x, tile_w, title, font), pad + line_h + pad), title, TEXT_RGB, font)
    bar_w = min(out_w - 4 * pad, 2 * tile_w)
    ramp = probability_rgb(np.tile(np.linspace(0.0, 1.0, bar_w), (line_h, 1)))
    template = np.asarray(image).copy()
    _framed(template, ramp, bar_y, 2 * pad)
    image = Image.fromarray(template)
    draw = ImageDraw.Draw(image)
    draw.text((2 * pad, bar_y + line_h + pad // 2), "0 %", TEXT_RGB, font)
    right = "100 %"
    draw.text(
        (2 * pad + bar_w - text_size(right, font)[0], bar_y + line_h + pad // 2),
        right,
        TEXT_RGB,
        font,
    )
    template = np.asarray(image).copy()
    frames_rgb = np.empty((n_leads, out_h, out_w, 3), dtype=np.uint8)
    for lead in range(n_leads):
        canvas = template.copy()
        for k in range(n_panels):
            _framed(canvas, tiles[k, lead], map_y, 2 * pad + k * (tile_w + 2 * pad))
        frame = Image.fromarray(canvas)
        label = f"{_minutes_label((lead + 1) * timestep_minutes)}  forecast"
        ImageDraw.Draw(frame).text((2 * pad, pad), label, FORECAST_RGB, font)
        frames_rgb[lead] = np.asarray(frame)
    return frames_rgb


def map_frames(rain_mmh: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Rain maps (T, H, W) in mm/h as (T, H', W', 3) uint8 on pysteps' colour scale, resized
    by `scale`: one panel of an animation (`make demo`)."""
    rain = np.asarray(rain_mmh, dtype=np.float32)
    if rain.ndim != 3:
        raise NextframeError(f"radar render: maps must be (frames, H, W), got {rain.shape}")
    return precip_rgb(_resample(rain, scale))


def render(model, windows, picked, params, manifest, gifs, grid):
    """Precipitation maps on pysteps' colour scale: truth | ConvLSTM | extrapolation |
    S-PROG of each picked test window as a GIF, and a grid of the first at +5, +30 and
    +60 min. With `evaluate.ensemble_members`, the model's own ensemble of each window too
    (the members evaluate scores, seeded alike): truth | its first members, and the maps of
    P(>= 1 mm/h) and P(>= 5 mm/h). A window's motion is found once, and its network run
    once, for every nowcast drawn of it (as evaluate does)."""
    from nextframe.domains.rain.forecast import forecast_and_members
    from nextframe.domains.rain.nowcast import motion_field, radar_baselines
    from nextframe.render import save_gif, save_png

    data = params.data
    timestep_minutes = manifest["radar"]["timestep_minutes"]
    scale = model.frames.rain
    gif_paths, grid_rgb = [], None
    for index in picked:
        rain = scale.decode_mmh(windows[int(index)][: data.n_frames, ..., 0])
        context, truth = rain[: data.n_context], rain[data.n_context :]
        motion = motion_field(context)
        baselines = radar_baselines(context, data.horizon, motion)
        grow = _members_grown(params, manifest, int(index))
        forecast, members = forecast_and_members(
            model, context[None], data.horizon, grow, motions=motion[None]
        )
        forecasts = {
            "ConvLSTM": forecast[0],
            "extrapolation": baselines["extrapolation"],
            "S-PROG": baselines["sprog"],
        }
        path = gifs / f"test_{index:05d}.gif"
        frames = nowcast_frames(context, truth, forecasts, timestep_minutes, MAP_SCALE)
        save_gif(path, frames, FPS)
        gif_paths.append(path)
        if members is not None:
            gif_paths += _ensemble_gifs(gifs / f"test_{index:05d}", context, truth, members[0],
                                        timestep_minutes)  # fmt: skip
        if grid_rgb is None:
            steps = (1, round(30 / timestep_minutes), round(60 / timestep_minutes))
            leads = sorted({s for s in steps if 1 <= s <= data.horizon}) or [data.horizon]
            grid_rgb = nowcast_grid(context, truth, forecasts, timestep_minutes, leads, MAP_SCALE)
    save_png(grid, grid_rgb)
    return [grid, *gif_paths]


# The members drawn beside the truth in an ensemble's GIF (the first ones: all alike likely).
SHOWN_MEMBERS = 3
# The exceedance probabilities mapped in GIFs (mm/h): what warnings are issued for.
MAPPED_THRESHOLDS = (1.0, 5.0)


def _members_grown(params, manifest, index: int):
    """How the model's own ensemble of test window `index` of the first archive grows (the
    members evaluate scores: `evaluation.evaluate_radar`'s seeds); None without
    `evaluate.ensemble_members`."""
    from nextframe.domains.rain.ensemble import EnsembleSpec
    from nextframe.domains.rain.perturbed import grown_around, member_seed

    if params.evaluate.ensemble_members is None:
        return None
    radar = manifest["radar"]
    spec = EnsembleSpec(
        params.evaluate.ensemble_members,
        radar["grid"]["pixel_km"],
        radar["timestep_minutes"],
        radar["network"],
    )
    return grown_around(spec, [member_seed(params.seed, 0, index)])


def probability_maps(members_mmh: np.ndarray, timestep_minutes: float) -> np.ndarray:
    """An ensemble's (M, L, H, W) maps of P(>= each of `MAPPED_THRESHOLDS`), one image a
    lead (L, H', W', 3) uint8: what render, `nextframe predict` and the demo draw."""
    from nextframe.domains.rain.export import exceedance_probabilities

    probabilities = exceedance_probabilities(members_mmh, MAPPED_THRESHOLDS)
    return probability_sequence(probabilities, MAPPED_THRESHOLDS, timestep_minutes, MAP_SCALE)


def _ensemble_gifs(stem: Path, context, truth, members, timestep_minutes: float) -> list[Path]:
    """`<stem>_members.gif` (truth | the first members) and `<stem>_probability.gif`."""
    from nextframe.render import save_gif

    shown = {f"member {m + 1}": members[m] for m in range(min(SHOWN_MEMBERS, len(members)))}
    members_path = stem.with_name(f"{stem.name}_members.gif")
    save_gif(members_path, nowcast_frames(context, truth, shown, timestep_minutes, MAP_SCALE), FPS)
    probability_path = stem.with_name(f"{stem.name}_probability.gif")
    save_gif(probability_path, probability_maps(members, timestep_minutes), FPS)
    return [members_path, probability_path]
