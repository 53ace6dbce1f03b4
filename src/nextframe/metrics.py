"""Frame-prediction metrics in the units of OpenSTL's benchmark tables, plus trivial baselines.

Inputs are float arrays of shape (N, T, H, W) or (N, T, H, W, C) with pixels in [0, 1];
a "frame" is one (H, W[, C]) image. Every metric is computed per frame, then averaged:

- ``mse``: SUM over the frame's pixels (and channels) of squared error, on the raw prediction
  (before clipping). A 64x64 frame that is off by 0.5 everywhere scores 1024, not 0.25.
- ``mae``: SUM over the frame's pixels of absolute error, also before clipping.
- ``ssim``: scikit-image ``structural_similarity`` on the prediction clipped to [0, 1], with
  ``data_range=1.0`` and its default 7x7 window (so frames must be at least 7x7); unitless, 1 is
  a perfect match.
- ``psnr``: ``-10 * log10(mean squared error over the frame's pixels)`` in dB on the clipped
  prediction (peak 1.0). A frame with zero error would be infinite; it is capped at
  ``PSNR_CAP_DB`` so averages stay finite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nextframe.errors import NextframeError

METRIC_NAMES = ("mse", "mae", "ssim", "psnr")
PSNR_CAP_DB = 100.0
# Sequences converted to float64 at a time: bounds the temporary copies to a few tens of MB.
_CHUNK_SEQUENCES = 16


def _check_pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both arrays with a singleton channel axis dropped, after checking the shapes agree."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise NextframeError(
            f"metrics: prediction shape {pred.shape} differs from ground-truth shape {true.shape}"
        )
    if pred.ndim not in (4, 5):
        raise NextframeError(
            f"metrics: expected frames shaped (N, T, H, W) or (N, T, H, W, C), got {pred.shape}"
        )
    if pred.ndim == 5 and pred.shape[-1] == 1:
        pred, true = pred[..., 0], true[..., 0]
    height, width = pred.shape[2], pred.shape[3]
    if min(height, width) < 7:
        raise NextframeError(
            f"metrics: SSIM's 7x7 window needs frames of at least 7x7 pixels, got {height}x{width}"
        )
    return pred, true


class PerStep:
    """Each metric's per-step sums over sequences added batch by batch (`add`), so a test set
    of any size is scored with one batch in memory; `means` divides by the sequences seen."""

    def __init__(self, names: tuple[str, ...] = METRIC_NAMES) -> None:
        self.names = names  # SSIM (scikit-image) only if asked for
        self.sums: dict[str, np.ndarray] | None = None
        self.n_sequences = 0

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        pred, true = _check_pair(pred, true)
        n_sequences, n_steps = pred.shape[:2]
        if self.sums is None:
            self.sums = {name: np.zeros(n_steps, dtype=np.float64) for name in self.names}
        sums = self.sums
        pixel_axes = tuple(range(2, pred.ndim))
        channel_axis = -1 if pred.ndim == 5 else None
        for start in range(0, n_sequences, _CHUNK_SEQUENCES):
            pred_chunk = np.asarray(pred[start : start + _CHUNK_SEQUENCES], dtype=np.float64)
            true_chunk = np.asarray(true[start : start + _CHUNK_SEQUENCES], dtype=np.float64)

            error = pred_chunk - true_chunk
            if "mse" in sums:
                sums["mse"] += np.sum(error**2, axis=pixel_axes).sum(axis=0)
            if "mae" in sums:
                sums["mae"] += np.sum(np.abs(error), axis=pixel_axes).sum(axis=0)

            pred_clipped = np.clip(pred_chunk, 0.0, 1.0)
            if "psnr" in sums:
                frame_mse = np.mean((pred_clipped - true_chunk) ** 2, axis=pixel_axes)
                with np.errstate(divide="ignore"):
                    frame_psnr = -10.0 * np.log10(frame_mse)
                sums["psnr"] += np.minimum(frame_psnr, PSNR_CAP_DB).sum(axis=0)

            if "ssim" not in sums:
                continue
            from skimage.metrics import structural_similarity

            for seq_index in range(pred_chunk.shape[0]):
                for step in range(n_steps):
                    sums["ssim"][step] += structural_similarity(
                        true_chunk[seq_index, step],
                        pred_clipped[seq_index, step],
                        data_range=1.0,
                        channel_axis=channel_axis,
                    )
        self.n_sequences += n_sequences

    def means(self) -> dict[str, np.ndarray]:
        """Each metric per step (length-T float64 arrays), averaged over the sequences added."""
        if self.sums is None:
            raise NextframeError("metrics: no sequences were scored")
        return {name: total / self.n_sequences for name, total in self.sums.items()}


def per_step(
    pred: np.ndarray, true: np.ndarray, names: tuple[str, ...] = METRIC_NAMES
) -> dict[str, np.ndarray]:
    """Each metric (of `names`) per predicted step (length-T float64 arrays, averaged over the
    N sequences).

    Error grows with the horizon in closed loop, so the per-step curve is what tells models apart.
    """
    scores = PerStep(names)
    scores.add(pred, true)
    return scores.means()


def summarize(per_step_values: dict[str, np.ndarray]) -> dict[str, float]:
    """Overall score per metric: the mean over steps, which equals the mean over all N*T frames."""
    return {name: float(np.mean(values)) for name, values in per_step_values.items()}


def _check_context(context: np.ndarray, horizon: int) -> np.ndarray:
    context = np.asarray(context)
    if context.ndim not in (4, 5) or context.shape[1] < 1:
        raise NextframeError(
            "baselines: expected context shaped (N, T_ctx, H, W[, C]) with T_ctx >= 1, "
            f"got {context.shape}"
        )
    if horizon < 1:
        raise NextframeError(f"baselines: horizon must be a positive integer, got {horizon}")
    return context


def zeros_baseline(context: np.ndarray, horizon: int) -> np.ndarray:
    """Predict black frames: the score any model must beat on a mostly-empty canvas."""
    context = _check_context(context, horizon)
    return np.zeros((context.shape[0], horizon, *context.shape[2:]), dtype=np.float32)


def copy_last_baseline(context: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last context frame: what a model that learned no motion would output."""
    context = _check_context(context, horizon)
    return np.repeat(context[:, -1:].astype(np.float32), horizon, axis=1)


def mean_context_baseline(context: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the mean context frame: the blurry average a model regressing to the mean produces."""
    context = _check_context(context, horizon)
    mean_frame = context.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    return np.repeat(mean_frame, horizon, axis=1)


def extrapolation_baseline(context: np.ndarray, horizon: int) -> np.ndarray:
    """pysteps' optical-flow nowcast: Lucas-Kanade motion of the context, the last frame
    advected along it (`nextframe.motion.extrapolate_frames`): what a model that learned
    only the motion, and nothing of the shapes, would do."""
    from nextframe.motion import extrapolate_frames

    context = _check_context(context, horizon)
    if context.ndim == 4:
        return extrapolate_frames(context[..., None], horizon)[..., 0]
    return extrapolate_frames(context, horizon)


BASELINES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "zeros": zeros_baseline,
    "copy_last": copy_last_baseline,
    "mean_context": mean_context_baseline,
    "extrapolation": extrapolation_baseline,
}
