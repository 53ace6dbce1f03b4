"""The model MLflow logs, registers and serves: a pyfunc around the compiled closed-loop
rollout, so the horizon is a request parameter (`params: {"horizon": N}`), which Keras' own
flavour (a plain `model.predict`) cannot take; a radar model's ensemble is one too
(`params: {"members": 12, "seed": 0}`: each clip's members, (M, horizon, H, W)).

Its signature comes from `predict`'s type hints (a list of clips), which tells MLflow's scoring
server to hand the request's `inputs` over as parsed, without the per-number copy and cast a
tensor signature costs (~0.5 s for one 10-frame clip as nested lists); every clip is checked
here instead, and a bad one is answered 400 with the reason while the server goes on serving.
A clip is either nested lists of numbers (T, H, W, C) in the model's units ([0, 1], or its
value range), read alike whether JSON wrote `1` or `1.0` (JavaScript writes 1.0 as 1), or a
base64 string of a `.npy` file (uint8 0-255, or float in the model's units): the compact form,
~4x smaller than the JSON numbers and decoded at memory speed, its header checked before a
byte is allocated. Each clip's future comes back in the form its context came in. Clips are
sent at their own frame rate: a model trained on every k-th frame (`frame_stride`) keeps
every k-th, counting back from the last. A radar model takes rain rates in mm/h (T, H, W) of
any domain size, NaN outside the domain (a base64 float32 `.npy`, as JSON has no NaN), and
answers in mm/h the same way. A request beyond the limits (`RequestLimits`) is refused.

Every refusal is a 400 with one reason, and no answer ever carries a stack trace: an
unexpected failure is a 500 with a line saying so, its traceback in the server's log only.

It is logged as code (`served_model.py`, MLflow's models from code), not pickled, and it
loads the saved predictor in Keras safe mode.
"""

from __future__ import annotations

import base64
import binascii
import gc
import io
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR
from mlflow.pyfunc import PythonModel

from nextframe.domains import domain_of
from nextframe.errors import NextframeError
from nextframe.frames import from_unit
from nextframe.ops.registry import PREDICTOR_ARTIFACT

NPY_HEADER_MAX = 64 * 1024  # bytes: numpy writes headers of a few hundred
# The environment variable that sets each of `RequestLimits`.
LIMIT_ENV = {
    "max_mb": "NEXTFRAME_SERVE_MAX_MB",
    "max_clips": "NEXTFRAME_SERVE_MAX_CLIPS",
    "max_context": "NEXTFRAME_SERVE_MAX_CONTEXT",
    "max_side": "NEXTFRAME_SERVE_MAX_SIDE",
}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestLimits:
    """What one request may hold, checked before its clips are decoded; each is set where the
    server starts, by its environment variable (`NEXTFRAME_SERVE_MAX_MB=256 make serve`): the
    operator's choice, not the model's, so changing one needs no retraining, and no client can.
    `max_mb`: the clips' data, as their `.npy` bytes (base64 text is 4/3 of that) or 4 bytes a
    number of nested lists; `max_clips` per request; `max_context`: frames per clip as sent
    (before a model's frame stride); `max_side`: a frame's height or width in pixels."""

    max_mb: float = 64.0
    max_clips: int = 64
    max_context: int = 256
    max_side: int = 4096

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RequestLimits:
        values: dict[str, Any] = {}
        for name, variable in LIMIT_ENV.items():
            text = environ.get(variable)
            if not text:
                continue
            kind = float if name == "max_mb" else int
            try:
                value = kind(text)
            except ValueError:
                value = 0
            if not (value > 0 and math.isfinite(value)):
                raise NextframeError(f"{variable} must be a positive number, got {text!r}")
            values[name] = value
        return cls(**values)

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)

    def check_clip_shape(self, shape: tuple[int, ...], index: int) -> None:
        """A clip (T, H, W[, C]) within the frame limits, by its shape alone."""
        if len(shape) not in (3, 4):
            raise NextframeError(
                f"clip {index}: must be frames (T, H, W, C) or (T, H, W), got shape {shape}"
            )
        if shape[0] > self.max_context:
            raise NextframeError(
                f"clip {index}: {shape[0]} frames, more than this server's limit of "
                f"{self.max_context} ({LIMIT_ENV['max_context']})"
            )
        if max(shape[1:3]) > self.max_side:
            raise NextframeError(
                f"clip {index}: frames of {shape[2]}x{shape[1]}, larger than this server's limit "
                f"of {self.max_side} pixels a side ({LIMIT_ENV['max_side']})"
            )

    def too_big(self, n_bytes: int) -> NextframeError:
        return NextframeError(
            f"the request's clips hold {n_bytes / 2**20:.3g} MB, more than this server's limit "
            f"of {self.max_mb:g} MB ({LIMIT_ENV['max_mb']})"
        )


DEFAULT_LIMITS = RequestLimits()


def decode_npy_text(text: str, index: int, limits: RequestLimits) -> np.ndarray:
    """A clip sent as the base64 text of a `.npy` file: its header read first, and the array
    it claims checked against the bytes that follow and the limits before it is made."""
    where = f"clip {index}"
    if len(text) > (limits.max_bytes + NPY_HEADER_MAX) * 4 // 3 + 4:
        raise limits.too_big(len(text) * 3 // 4)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NextframeError(f"{where}: text must be a base64 .npy file (not base64)") from None
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"a .npy format version {version[0]}.{version[1]} is not read")
    except (ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise NextframeError(f"{where}: text must be a base64 .npy file ({reason})") from None
    if dtype.hasobject or dtype.kind not in "uif":
        raise NextframeError(
            f"{where}: text must be a base64 .npy file of numbers, got dtype {dtype}"
            + (" (Python objects, pickled)" if dtype.hasobject else "")
        )
    limits.check_clip_shape(shape, index)
    claimed = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    present = len(data) - stream.tell()
    if claimed != present:
        raise NextframeError(
            f"{where}: its .npy header claims {shape} {dtype} ({claimed} bytes), but "
            f"{present} bytes follow it"
        )
    order = "F" if fortran_order else "C"
    return np.ndarray(shape, dtype, buffer=data, offset=stream.tell(), order=order)


def _as_array(clip: Any, index: int, limits: RequestLimits) -> tuple[np.ndarray, str]:
    """One clip of the request as an array, and the form it came in: `npy` or `lists`. Numbers
    in lists are read as floats, whatever JSON wrote (`1` or `1.0`)."""
    if isinstance(clip, str):
        return decode_npy_text(clip, index, limits), "npy"
    try:
        frames = np.asarray(clip)
    except ValueError:
        frames = np.asarray(clip, dtype=object)
    if frames.dtype.kind not in "iuf":
        got = "ragged or mixed lists" if frames.dtype.kind == "O" else str(frames.dtype)
        raise NextframeError(
            f"clip {index}: must be nested lists of numbers (T, H, W, C) of one shape or a "
            f"base64 .npy, got {got}"
        )
    limits.check_clip_shape(frames.shape, index)
    return frames.astype(np.float64, copy=False), "lists"


def read_request(
    model_input: Any, limits: RequestLimits = DEFAULT_LIMITS
) -> tuple[np.ndarray, list[str]]:
    """The request's clips as one (N, T, H, W, C) array, and the form each came in (`npy` or
    `lists`), within `limits`. A model logged with a tensor signature (before this one) is
    handed one array."""
    if isinstance(model_input, dict) and "context" in model_input:
        model_input = model_input["context"]
    if isinstance(model_input, np.ndarray):
        _check_clip_count(len(model_input) if model_input.ndim else 0, limits)
        limits.check_clip_shape(model_input.shape[1:], 0)
        if model_input.nbytes > limits.max_bytes:
            raise limits.too_big(model_input.nbytes)
        return model_input, ["lists"] * len(model_input)
    if not isinstance(model_input, list) or not model_input:
        raise NextframeError("inputs must be a list of clips, one or more")
    _check_clip_count(len(model_input), limits)
    text_bytes = sum(len(c) * 3 // 4 for c in model_input if isinstance(c, str))
    if text_bytes > limits.max_bytes + NPY_HEADER_MAX * len(model_input):
        raise limits.too_big(text_bytes)
    clips, forms = zip(*(_as_array(c, i, limits) for i, c in enumerate(model_input)), strict=True)
    shapes = {c.shape for c in clips}
    if len(shapes) > 1:
        raise NextframeError(f"the clips of one request must have one shape, got {sorted(shapes)}")
    dtypes = {str(c.dtype) for c in clips}
    if len(dtypes) > 1:
        raise NextframeError(f"the clips of one request must have one dtype, got {sorted(dtypes)}")
    # a .npy's own bytes; a number of nested lists as 4 (a float32's)
    pairs = zip(clips, forms, strict=True)
    n_bytes = sum(c.nbytes if form == "npy" else 4 * c.size for c, form in pairs)
    if n_bytes > limits.max_bytes:
        raise limits.too_big(n_bytes)
    return np.stack(clips), list(forms)


def _check_clip_count(n_clips: int, limits: RequestLimits) -> None:
    if n_clips > limits.max_clips:
        raise NextframeError(
            f"{n_clips} clips, more than this server's limit of {limits.max_clips} "
            f"({LIMIT_ENV['max_clips']})"
        )


def _limit_backend_threads(threads: int) -> None:
    """Each of `make serve`'s workers computes on `threads` threads (0: the backend's default,
    all cores), so that workers answering at once share the cores rather than oversubscribe
    them. TensorFlow only; it must happen before the backend's first op."""
    import keras

    if threads > 0 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def refused(exc: Exception) -> MlflowException:
    """A 400 with the reason alone (MLflow's own, for an exception, carries the traceback)."""
    return MlflowException.invalid_parameter_value(" ".join(str(exc).split()) or repr(exc))


def failed(message: str) -> MlflowException:
    """A 500 that says what failed and no more: the traceback goes to the server's log."""
    _log.exception("nextframe: %s", message)
    return MlflowException(f"{message} (the server's log has the details)", INTERNAL_ERROR)


# Reasons to refuse a request, not failures of the server: ours, and numpy's or Python's on
# values no check foresaw (a number too large for an int, say).
REQUEST_ERRORS = (NextframeError, TypeError, ValueError, OverflowError)


class RolloutModel(PythonModel):
    """A list of clips, each (T, H, W, C) context frames -> a list of the next `horizon`
    frames of each (horizon, H, W, C), predicted closed loop, in the form each clip came in."""

    def load_context(self, context) -> None:
        _limit_backend_threads(int(os.environ.get("NEXTFRAME_BACKEND_THREADS") or 0))
        from nextframe.model import load_predictor
        from nextframe.rollout import compiled_rollout

        self.limits = RequestLimits.from_environ(os.environ)
        self.predictor = load_predictor(context.artifacts[PREDICTOR_ARTIFACT])
        compiled_rollout(self.predictor).warm_up()  # compiled before the first request
        # Keep the collector off the ~10^5 objects the backend holds from here on: every
        # request allocates thousands of lists, and each collection they trigger would scan
        # them all again (0.4 s of a nested-list request's 0.6 s).
        gc.freeze()

    def predict(
        self, context, model_input: list[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        """Every refusal a 400 with its reason; anything else a 500 with no traceback."""
        try:
            return self._predict(model_input, params)
        except MlflowException:
            raise
        except MemoryError:
            raise failed("the prediction needed more memory than the server has") from None
        except Exception:
            raise failed("the prediction failed on the server") from None

    def _predict(self, model_input: list[Any], params: dict[str, Any] | None) -> list[Any]:
        frames = self.predictor.frames
        domain = domain_of(frames)
        limits = getattr(self, "limits", DEFAULT_LIMITS)
        horizon = (params or {}).get("horizon", self.predictor.horizon)
        try:
            clips, forms = read_request(model_input, limits)
            context = domain.read_request(clips, horizon, self.predictor)
            members = domain.read_members(params or {}, context, int(horizon), limits.max_bytes)
        except REQUEST_ERRORS as exc:
            raise refused(exc) from None
        future = domain.predict(self.predictor, context, int(horizon), members)
        if isinstance(model_input, (np.ndarray, dict)):  # a tensor-signature model's answer
            return from_unit(future, frames)
        answers = zip(future, forms, strict=True)
        return [domain.answer(each, form, clips.dtype, frames) for each, form in answers]
