"""Rain rates as the model's values: dBR, as pysteps' nowcasts work in, scaled to [0, 1].

A rain rate R (mm/h) at or above `threshold_mmh` becomes 10 log10(R) dBR, anything below is
dry, at `zerovalue_db` (pysteps' `dB_transform` with threshold and zero value). dBR from
`zerovalue_db` to 10 log10(`max_mmh`) is mapped linearly to [0, 1]: 0 is dry, heavier rain
clips at 1. A model value below the threshold's reads back as dry (0 mm/h).

On disk (`data/`), every source hands on uint8: a rain value is kept as round(u * 254) and
255 marks no data (NaN after import: outside the radar's domain). About 0.14 dB a step with
the defaults, 3 % of the rain rate. The loss and every score skip no-data pixels; the model
reads them as dry, and its predictions there are NaN (`predict_rain`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NO_DATA = 255
VALUE_STEPS = 254  # codes 0..254 hold values in [0, 1]
# A code's model value on the device: code / 254, and no data (255) read as dry.
CODE_VALUES = np.append(np.arange(255, dtype=np.float32) / np.float32(254.0), np.float32(0.0))


@dataclass(frozen=True)
class RainScale:
    """How rain rates (mm/h) become the model's values in [0, 1] and back."""

    threshold_mmh: float = 0.1
    zerovalue_db: float = -15.0
    max_mmh: float = 100.0

    @classmethod
    def of(cls, radar) -> RainScale:
        """The scale `data.radar` params ask for."""
        return cls(radar.threshold_mmh, radar.zerovalue_db, radar.max_mmh)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RainScale:
        return cls(**{k: float(config[k]) for k in ("threshold_mmh", "zerovalue_db", "max_mmh")})

    @property
    def span_db(self) -> float:
        """dB from dry (0) to the top of the scale (1): one model value is this many dB."""
        return 10.0 * math.log10(self.max_mmh) - self.zerovalue_db

    @property
    def threshold_unit(self) -> float:
        """The model value of `threshold_mmh`: below it is dry."""
        return (10.0 * math.log10(self.threshold_mmh) - self.zerovalue_db) / self.span_db

    def to_unit(self, rain_mmh: np.ndarray) -> np.ndarray:
        """mm/h -> float32 in [0, 1]; NaN stays NaN."""
        rain = np.asarray(rain_mmh, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            db = np.where(rain >= self.threshold_mmh, 10.0 * np.log10(rain), self.zerovalue_db)
        unit = np.clip((db - self.zerovalue_db) / self.span_db, 0.0, 1.0)
        return np.where(np.isnan(rain), np.nan, unit).astype(np.float32)

    def to_mmh(self, unit: np.ndarray) -> np.ndarray:
        """Model values -> float32 mm/h (0 below the threshold); NaN stays NaN."""
        unit = np.asarray(unit, dtype=np.float64)
        rain = 10.0 ** ((self.zerovalue_db + unit * self.span_db) / 10.0)
        rain = np.where(unit >= self.threshold_unit, rain, 0.0)
        return np.where(np.isnan(unit), np.nan, rain).astype(np.float32)

    def encode(self, rain_mmh: np.ndarray) -> np.ndarray:
        """mm/h with NaN -> uint8 codes: 0..254 for [0, 1], `NO_DATA` for NaN."""
        unit = self.to_unit(rain_mmh)
        codes = np.rint(np.nan_to_num(unit, nan=0.0) * VALUE_STEPS).astype(np.uint8)
        # Rain at the threshold must not round down to dry: its code is the first above it.
        lowest_rain = math.ceil(self.threshold_unit * VALUE_STEPS)
        raining = np.nan_to_num(unit, nan=0.0) >= self.threshold_unit
        codes[raining] = np.maximum(codes[raining], lowest_rain)
        codes[np.isnan(unit)] = NO_DATA
        return codes

    def decode_mmh(self, codes: np.ndarray) -> np.ndarray:
        """uint8 codes -> float32 mm/h, NaN for no data."""
        return self.to_mmh(decode_unit(codes))


def decode_unit(codes: np.ndarray) -> np.ndarray:
    """uint8 codes -> float32 model values, NaN for no data."""
    codes = np.asarray(codes)
    unit = codes.astype(np.float32) / np.float32(VALUE_STEPS)
    return np.where(codes == NO_DATA, np.float32(np.nan), unit)


def rain_codes_to_frames(codes_uint8):
    """Radar clips of rain codes (B, T, H, W, 1) -> float32 model values, no data as dry."""
    from keras import ops

    return ops.take(ops.convert_to_tensor(CODE_VALUES), ops.cast(codes_uint8, "int32"))


def rain_valid(codes_uint8):
    """1.0 where a radar clip has data, 0.0 where it has none (outside the domain)."""
    from keras import ops

    return ops.cast(ops.not_equal(ops.cast(codes_uint8, "int32"), NO_DATA), "float32")
