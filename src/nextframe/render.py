"""Closed-loop visualisations: predictions beside the truth and their error, context marked.

Frames the model was given (context) are drawn with a green border and greyed or left blank in
the prediction and error panels; frames the model produced on its own are drawn with a red
border. So a viewer can never mistake ground truth fed back in for a prediction.
"""

from __future__ import annotations

import os
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nextframe.errors import NextframeError
from nextframe.frames import to_uint8
from nextframe.io import atomic_path

BACKGROUND_RGB = (24, 24, 24)
TEXT_RGB = (235, 235, 235)
NEUTRAL_RGB = (110, 110, 110)  # truth panel border: neither given nor predicted
CONTEXT_RGB = (40, 190, 70)  # green: frames given to the model
PREDICTED_RGB = (230, 60, 60)  # red: frames the model predicted in closed loop
BLANK_GREY = 56  # a panel with nothing to show, distinct from a black (empty) frame
ROW_LABELS = ("truth", "prediction", "|error|")


@cache
def text_font(scale: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled default font, grown with the upscale factor so labels stay legible."""
    return ImageFont.load_default(size=max(13, 4 * scale))


def text_size(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[int, int]:
    """Width of the ink, and height from the drawing origin down to the lowest ink."""
    left, _top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom)


def text_line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    return text_size("Ag|0/", font)[1]


def _to_uint8(frames: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """Frames with `ndim` axes (..., H, W) and maybe a channel axis of 1 (grey) or 3 (RGB), as
    RGB uint8 (..., H, W, 3); floats are read as [0, 1] and clipped."""
    frames = np.asarray(frames)
    if frames.ndim == ndim:
        frames = frames[..., None]
    if frames.ndim != ndim + 1 or frames.shape[-1] not in (1, 3):
        raise NextframeError(
            f"render: {name} must have {ndim} axes (..., H, W) and maybe channels (1 or 3), "
            f"got {frames.shape}"
        )
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.floating):
            raise NextframeError(
                f"render: {name} must be uint8 or float in [0, 1], got {frames.dtype}"
            )
        frames = to_uint8(frames)
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def _check_split(n_frames: int, horizon: int, n_context: int) -> None:
    if n_context < 0 or n_context + horizon != n_frames:
        raise NextframeError(
            f"render: truth has {n_frames} frames but n_context={n_context} plus "
            f"{horizon} predicted frames makes {n_context + horizon}"
        )


def _upscale(frames_rgb: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale of (..., H, W, 3), so pixels stay crisp."""
    if scale < 1:
        raise NextframeError(f"render: scale must be a positive integer, got {scale}")
    return np.repeat(np.repeat(frames_rgb, scale, axis=-3), scale, axis=-2)


def _greyed(frames_uint8: np.ndarray) -> np.ndarray:
    """Washed-out frames: lifted background, dimmed digits, so they read as 'given, not made'."""
    return (BLANK_GREY + frames_uint8.astype(np.uint16) * (160 - BLANK_GREY) // 255).astype(
        np.uint8
    )


def _abs_error(truth_uint8: np.ndarray, pred_uint8: np.ndarray) -> np.ndarray:
    return np.abs(truth_uint8.astype(np.int16) - pred_uint8.astype(np.int16)).astype(np.uint8)


def comparison_frames(
    truth: np.ndarray, pred: np.ndarray, n_context: int, scale: int
) -> np.ndarray:
    """Animation frames (T, H', W', 3) uint8 of one sequence: truth | prediction | |error|.

    truth is the full (T, H, W[, C]) sequence; pred the (horizon, H, W[, C]) prediction of its
    last T - n_context frames. Context frames show greyed in the prediction panel, blank in the
    error panel, with green borders; predicted frames get red borders.
    """
    truth_uint8 = _to_uint8(truth, 3, "truth")
    pred_uint8 = _to_uint8(pred, 3, "pred")
    if truth_uint8.shape[1:] != pred_uint8.shape[1:]:
        raise NextframeError(
            f"render: truth frames {truth_uint8.shape[1:]} differ from pred frames "
            f"{pred_uint8.shape[1:]}"
        )
    n_frames, horizon = truth_uint8.shape[0], pred_uint8.shape[0]
    _check_split(n_frames, horizon, n_context)

    pred_panels = np.full_like(truth_uint8, BLANK_GREY)
    pred_panels[:n_context] = _greyed(truth_uint8[:n_context])
    pred_panels[n_context:] = pred_uint8
    error_panels = np.full_like(truth_uint8, BLANK_GREY)
    error_panels[n_context:] = _abs_error(truth_uint8[n_context:], pred_uint8)
    panels = [_upscale(frames, scale) for frames in (truth_uint8, pred_panels, error_panels)]

    font = text_font(scale)
    line_height = text_line_height(font)
    border = max(2, scale)
    gap = 2 * border
    tile_h, tile_w = panels[0].shape[1:3]
    panel_h, panel_w = tile_h + 2 * border, tile_w + 2 * border
    header_h = gap + 2 * line_height + 2 * gap
    out_h = header_h + panel_h + gap
    out_w = 3 * panel_w + 4 * gap  # outer margins plus two gaps between panels
    panel_x = [gap + index * (panel_w + gap) for index in range(3)]

    # Titles are the same in every frame: draw them once.
    template = Image.new("RGB", (out_w, out_h), BACKGROUND_RGB)
    draw = ImageDraw.Draw(template)
    titles_y = gap + line_height + gap
    for x, title in zip(panel_x, ROW_LABELS, strict=True):
        draw.text((x + (panel_w - text_size(title, font)[0]) // 2, titles_y), title, TEXT_RGB, font)
    template_rgb = np.asarray(template).copy()

    frames_rgb = np.empty((n_frames, out_h, out_w, 3), dtype=np.uint8)
    for t in range(n_frames):
        is_context = t < n_context
        phase_rgb = CONTEXT_RGB if is_context else PREDICTED_RGB
        canvas = template_rgb.copy()
        for index, x in enumerate(panel_x):
            border_rgb = NEUTRAL_RGB if index == 0 else phase_rgb
            canvas[header_h : header_h + panel_h, x : x + panel_w] = border_rgb
            canvas[
                header_h + border : header_h + border + tile_h, x + border : x + border + tile_w
            ] = panels[index][t]
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        if is_context:
            counter = f"context {t + 1}/{n_context}"
        else:
            counter = f"predicted {t - n_context + 1}/{horizon}"
        draw.text((panel_x[0], gap), counter, phase_rgb, font)
        frame_label = f"frame {t + 1}/{n_frames}"
        frame_label_x = panel_x[2] + panel_w - text_size(frame_label, font)[0]
        draw.text((frame_label_x, gap), frame_label, NEUTRAL_RGB, font)
        frames_rgb[t] = np.asarray(image)
    return frames_rgb


PANEL_BORDERS_RGB = {"context": CONTEXT_RGB, "predicted": PREDICTED_RGB, "truth": NEUTRAL_RGB}


def panel_frames(frames: np.ndarray, kind: str, scale: int) -> np.ndarray:
    """Animation frames (T, H', W', 3) uint8 of one clip in one panel: a border in the kind's
    colour (context green, predicted red, truth grey) and a counter `<kind> t/T` above it."""
    frames_uint8 = _upscale(_to_uint8(frames, 3, kind), scale)
    n_frames, tile_h, tile_w = frames_uint8.shape[:3]
    border_rgb = PANEL_BORDERS_RGB[kind]
    font = text_font(scale)
    border = max(2, scale)
    gap = 2 * border
    labels = [f"{kind} {t + 1}/{n_frames}" for t in range(n_frames)]
    text_w = max(text_size(label, font)[0] for label in labels)
    out_w = max(tile_w + 2 * border, text_w) + 2 * gap
    header_h = gap + text_line_height(font) + gap
    out_h = header_h + tile_h + 2 * border + gap
    left = (out_w - tile_w - 2 * border) // 2

    frames_rgb = np.empty((n_frames, out_h, out_w, 3), dtype=np.uint8)
    for t, label in enumerate(labels):
        canvas = np.empty((out_h, out_w, 3), dtype=np.uint8)
        canvas[:] = BACKGROUND_RGB
        canvas[header_h : out_h - gap, left : left + tile_w + 2 * border] = border_rgb
        top, inner = header_h + border, left + border
        canvas[top : top + tile_h, inner : inner + tile_w] = frames_uint8[t]
        image = Image.fromarray(canvas)
        ImageDraw.Draw(image).text((left, gap), label, border_rgb, font)
        frames_rgb[t] = np.asarray(image)
    return frames_rgb


def context_then_prediction(context: np.ndarray, predicted: np.ndarray, scale: int) -> np.ndarray:
    """One animation of a clip and its future: the given frames (green), then the predicted
    ones (red), in one panel of the same size."""
    both = [panel_frames(context, "context", scale), panel_frames(predicted, "predicted", scale)]
    width = max(frames.shape[2] for frames in both)
    padded = [_pad_width(frames, width) for frames in both]
    return np.concatenate(padded)


def _pad_width(frames_rgb: np.ndarray, width: int) -> np.ndarray:
    """Centre (T, H, W, 3) frames in `width` columns of background."""
    extra = width - frames_rgb.shape[2]
    if extra == 0:
        return frames_rgb
    out = np.empty((*frames_rgb.shape[:2], width, 3), dtype=np.uint8)
    out[:] = BACKGROUND_RGB
    out[:, :, extra // 2 : extra // 2 + frames_rgb.shape[2]] = frames_rgb
    return out


def grid_image(truth: np.ndarray, pred: np.ndarray, n_context: int, scale: int) -> np.ndarray:
    """One (H', W', 3) uint8 image of several sequences: rows truth/prediction/|error|, columns t.

    truth is (N, T, H, W[, C]), pred (N, horizon, H, W[, C]). Context columns are blank in the
    prediction
    and error rows; the header marks context columns green and predicted columns red.
    """
    truth_uint8 = _to_uint8(truth, 4, "truth")
    pred_uint8 = _to_uint8(pred, 4, "pred")
    if truth_uint8.shape[0] != pred_uint8.shape[0] or truth_uint8.shape[2:] != pred_uint8.shape[2:]:
        raise NextframeError(
            f"render: truth {truth_uint8.shape} and pred {pred_uint8.shape} must share N, H and W"
        )
    n_sequences, n_frames = truth_uint8.shape[:2]
    horizon = pred_uint8.shape[1]
    _check_split(n_frames, horizon, n_context)

    truth_tiles = _upscale(truth_uint8, scale)
    pred_tiles = _upscale(pred_uint8, scale)
    error_tiles = _upscale(_abs_error(truth_uint8[:, n_context:], pred_uint8), scale)
    tile_h, tile_w = truth_tiles.shape[2:4]

    font = text_font(scale)
    line_height = text_line_height(font)
    pad = max(2, scale)
    tile_gap = max(2, scale // 2)
    # A wider gap where the model stops being given frames and starts predicting.
    split_gap = 4 * tile_gap
    sequence_gap = 3 * pad + tile_gap
    label_w = max(text_size(label, font)[0] for label in ROW_LABELS) + 2 * pad
    bar_h = max(2, scale // 2)
    header_h = pad + line_height + pad + bar_h + pad

    column_x = []
    x = label_w
    for t in range(n_frames):
        if t == n_context and n_context > 0:
            x += split_gap - tile_gap
        column_x.append(x)
        x += tile_w + tile_gap
    out_w = x - tile_gap + pad
    block_h = 3 * tile_h + 2 * tile_gap
    out_h = header_h + n_sequences * block_h + (n_sequences - 1) * sequence_gap + pad

    canvas = np.empty((out_h, out_w, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND_RGB
    for t, x in enumerate(column_x):
        phase_rgb = CONTEXT_RGB if t < n_context else PREDICTED_RGB
        bar_y = pad + line_height + pad
        canvas[bar_y : bar_y + bar_h, x : x + tile_w] = phase_rgb
    row_y = []
    for seq_index in range(n_sequences):
        block_y = header_h + seq_index * (block_h + sequence_gap)
        rows_y = [block_y + row * (tile_h + tile_gap) for row in range(3)]
        row_y.extend(rows_y)
        for t, x in enumerate(column_x):
            step = t - n_context
            tiles = [truth_tiles[seq_index, t]]
            if step < 0:
                tiles += [np.full((tile_h, tile_w, 3), BLANK_GREY, dtype=np.uint8)] * 2
            else:
                tiles += [pred_tiles[seq_index, step], error_tiles[seq_index, step]]
            for y, tile in zip(rows_y, tiles, strict=True):
                canvas[y : y + tile_h, x : x + tile_w] = tile

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for t, x in enumerate(column_x):
        phase_rgb = CONTEXT_RGB if t < n_context else PREDICTED_RGB
        label = f"t{t + 1}"
        draw.text((x + (tile_w - text_size(label, font)[0]) // 2, pad), label, phase_rgb, font)
    for index, y in enumerate(row_y):
        label = ROW_LABELS[index % 3]
        draw.text((pad, y + (tile_h - line_height) // 2), label, TEXT_RGB, font)
    return np.asarray(image).copy()


def _rgb_uint8(image_rgb: np.ndarray, ndim: int, name: str) -> np.ndarray:
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != ndim or image_rgb.shape[-1] != 3 or image_rgb.dtype != np.uint8:
        raise NextframeError(
            f"render: {name} must be uint8 RGB with {ndim} axes ending in 3, "
            f"got {image_rgb.dtype} {image_rgb.shape}"
        )
    return image_rgb


def save_gif(path: str | os.PathLike[str], frames: np.ndarray, fps: float) -> None:
    """Write (T, H, W, 3) RGB or (T, H, W, 1) grey uint8 frames as a looping GIF, atomically
    (grey frames exactly: their palette is the 256 greys).

    Pillow merges consecutive identical frames (adding their durations); frames from
    `comparison_frames` always differ by their counter, so all T frames are kept.
    """
    frames = np.asarray(frames)
    grey = frames.ndim == 4 and frames.shape[-1] == 1 and frames.dtype == np.uint8
    frames = frames[..., 0] if grey else _rgb_uint8(frames, 4, "frames")
    if frames.shape[0] == 0:
        raise NextframeError("render: a GIF needs at least one frame, got none")
    if not fps > 0:
        raise NextframeError(f"render: fps must be positive, got {fps}")
    images = [Image.fromarray(frame) for frame in frames]
    with atomic_path(path) as tmp:
        # The temp name ends in .tmp, so the format must be named explicitly.
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        )


def save_png(path: str | os.PathLike[str], image_rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 image as PNG, atomically."""
    image_rgb = _rgb_uint8(image_rgb, 3, "image_rgb")
    with atomic_path(path) as tmp:
        Image.fromarray(image_rgb).save(tmp, format="PNG")
