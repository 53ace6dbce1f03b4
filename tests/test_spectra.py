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


def test_power_under_a_wavelength_is_each_forecasts_small_scale_variance_over_the_truths():
    """1 for a forecast as rough as the truth, 4 for one twice its amplitude, far under 1 for
    a blurred one; Parseval: the truth's band variance is what a band-pass of it holds."""
    truth = _showers(np.random.default_rng(2))
    spectra = Spectra(SHAPE, 1.0, AT_30_AND_60, x_name="wavelength_km")
    spectra.add("observed", truth)
    spectra.add("copy", truth)
    spectra.add("doubled", 2 * truth)
    spectra.add("blurred", ndimage.uniform_filter(truth, size=(1, 7, 7)))
    power = spectra.power_under(8)
    assert list(power) == [f"{name}_{lead}" for lead in AT_30_AND_60 for name in
                           ("blurred", "copy", "doubled")]  # fmt: skip
    assert power["copy_30min"] == pytest.approx(1.0) and power["doubled_60min"] == pytest.approx(4)
    assert power["blurred_30min"] < 0.2 and power["blurred_60min"] < 0.2
    ring = _band_variance(truth[5], 8) / _band_variance(ndimage.uniform_filter(truth[5], 7), 8)
    assert 1 / power["blurred_30min"] == pytest.approx(ring, rel=0.05)


def _band_variance(field: np.ndarray, wavelength: float) -> float:
    """The variance of `field`'s Fourier components of wavelength under `wavelength` pixels."""
    spectrum = np.fft.fft2(field)
    fy, fx = np.meshgrid(*(np.fft.fftfreq(n) for n in field.shape), indexing="ij")
    band = np.hypot(fy, fx) > 1 / wavelength
    return float(np.sum(np.abs(spectrum[band]) ** 2))
