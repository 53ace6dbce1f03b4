"""Power spectra of nowcasts beside the truth's: blur shows as lost power at small scales,
windows of another grid are left out, and accumulators merged across processes equal one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from nextframe.motion import pysteps
from nextframe.spectra import Spectra

SHAPE = (64, 80)
AT_30_AND_60 = {"30min": 5, "60min": 11}  # leads every 5 minutes


def _showers(rng: np.random.Generator) -> np.ndarray:
    """(12, 64, 80) mm/h: rain cells of a few pixels, a lead every 5 minutes."""
    return np.where(rng.random((12, *SHAPE)) < 0.1, rng.gamma(2.0, 4.0, (12, *SHAPE)), 0.0)


def test_a_blurred_forecast_has_less_power_at_small_wavelengths_than_the_truth():
    truth = _showers(np.random.default_rng(0))
    blurred = ndimage.uniform_filter(truth, size=(1, 7, 7))
    blurred[:, :4] = np.nan  # no data reads as dry
    spectra = Spectra(SHAPE, 1.0, AT_30_AND_60, x_name="wavelength_km")
    spectra.add("observed", truth)
    spectra.add("model", blurred)
    spectra.add("other_grid", np.zeros((12, 32, 32)))  # another archive's: left out
    spectra.add("zeros", np.zeros_like(truth))  # no power to draw: left out
    rows = spectra.rows()
    assert list(rows[0]) == [
        "wavelength_km",
        "observed_30min",
        "model_30min",
        "observed_60min",
        "model_60min",
    ]
    wavelengths = [row["wavelength_km"] for row in rows]
    assert wavelengths == sorted(wavelengths, reverse=True) and wavelengths[-1] == pytest.approx(
        80 / 39
    )
    small = [row for row in rows if row["wavelength_km"] < 8]
    assert all(row["model_30min"] < row["observed_30min"] - 10 for row in small)  # 10 dB less
    expected = pysteps().utils.spectral.rapsd(truth[5], fft_method=np.fft)
    assert rows[0]["observed_30min"] == pytest.approx(10 * np.log10(expected[1]))


def test_spectra_merged_from_workers_equal_one_accumulator():
    rng = np.random.default_rng(1)
    windows = [_showers(rng) for _ in range(3)]
    one = Spectra(SHAPE, 1.0, AT_30_AND_60)
    for window in windows:
        one.add("observed", window)
    merged = Spectra(SHAPE, 1.0, AT_30_AND_60)
    for window in windows:
        worker = Spectra(SHAPE, 1.0, AT_30_AND_60)
        worker.add("observed", window)
        merged.merge(worker)
    values = [[list(row.values()) for row in each.rows()] for each in (merged, one)]
    np.testing.assert_allclose(*values)
    assert Spectra(SHAPE, 1.0, AT_30_AND_60).rows() == []
    short = Spectra(SHAPE, 1.0, AT_30_AND_60)
    short.add("observed", windows[0][:6])  # 6 leads: 60 minutes is past the horizon
    assert list(short.rows()[0]) == ["wavelength_px", "observed_30min"]
    colour = Spectra(SHAPE, 1.0, {"step_1": 0})
    colour.add("observed", np.repeat(windows[0][..., None], 3, axis=-1))  # channels' mean
    one_step = Spectra(SHAPE, 1.0, {"step_1": 0})
    one_step.add("observed", windows[0])
    assert colour.rows() == [pytest.approx(row) for row in one_step.rows()]
