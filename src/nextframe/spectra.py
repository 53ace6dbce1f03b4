"""The radially averaged power spectrum of each forecast beside the truth's
(`pysteps.utils.spectral.rapsd`), as DGMR's authors show blur: a forecast that averages
uncertain detail away has less power than the truth at small wavelengths. Any domain's frames
(a colour frame by its channels' mean, no-data as 0), at chosen leads, averaged over the test
windows of one grid, mergeable across worker processes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nextframe.motion import pysteps


class Spectra:
    """Sums of each (forecast, lead) field's spectrum over windows on a grid of `shape`, a
    pixel `pixel_size` long (in the unit `x_name` names), at `leads` (label -> 0-based lead);
    a field of another shape (another archive's grid) is left out."""

    def __init__(
        self,
        shape: tuple[int, int],
        pixel_size: float,
        leads: Mapping[str, int],
        x_name: str = "wavelength_px",
    ) -> None:
        self.shape, self.pixel_size, self.x_name = tuple(shape), pixel_size, x_name
        self.leads = dict(leads)
        self._sums: dict[tuple[str, str], np.ndarray] = {}
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, name: str, forecast: np.ndarray) -> None:
        """`forecast` (L, H, W) or (L, H, W, C): its fields at `leads`."""
        forecast = np.asarray(forecast)
        if forecast.ndim == 4:
            forecast = forecast.mean(axis=-1)
        if tuple(forecast.shape[1:]) != self.shape:
            return
        for label, lead in self.leads.items():
            if lead >= len(forecast):
                continue
            field = np.nan_to_num(forecast[lead].astype(np.float64), nan=0.0)
            power = pysteps().utils.spectral.rapsd(field, fft_method=np.fft)
            key = (name, label)
            self._sums[key] = self._sums.get(key, 0.0) + power
            self._counts[key] = self._counts.get(key, 0) + 1

    def merge(self, other: Spectra) -> None:
        """Add `other`'s windows (a worker's) to these."""
        for key, power in other._sums.items():
            self._sums[key] = self._sums.get(key, 0.0) + power
            self._counts[key] = self._counts.get(key, 0) + other._counts[key]

    def _keys(self) -> list[tuple[str, str]]:
        """(forecast, lead label) pairs by lead, the truth first at each, then by name."""
        order = list(self.leads)
        return sorted(self._sums, key=lambda k: (order.index(k[1]), k[0] != "observed", k[0]))

    def power_under(self, wavelength: float) -> dict[str, float]:
        """Each forecast's variance at wavelengths under `wavelength` (in the unit of the
        rows), over the truth's at the same lead: 1 is as rough as the truth, under 1 blurred.
        The variance of a band is its rings' mean power times their circumferences summed
        (Parseval), so the finest rings, where a blurred forecast loses most, are not
        outweighed by the few coarse ones. Keys as the rows' columns (`model_60min`)."""
        n_bins = min((len(power) for power in self._sums.values()), default=0)
        frequencies = np.fft.fftfreq(max(self.shape), d=self.pixel_size)[:n_bins]
        band = frequencies > 1.0 / wavelength
        variance = {
            key: float(
                np.sum((self._sums[key][:n_bins] / self._counts[key])[band] * frequencies[band])
            )
            for key in self._keys()
        }
        return {
            f"{name}_{label}": value / truth
            for (name, label), value in variance.items()
            if name != "observed" and (truth := variance.get(("observed", label), 0.0)) > 0
        }

    def rows(self) -> list[dict[str, float]]:
        """One row per wavelength (longest first, the mean left out): each forecast's and the
        truth's (`observed`) mean power at each lead, in dB (floored at -300 dB); a forecast
        with no power at any wavelength (all zero: nothing to draw) is left out."""
        if not self._sums:
            return []
        means = {
            f"{name}_{label}": self._sums[(name, label)] / self._counts[(name, label)]
            for name, label in self._keys()
        }
        means = {k: np.maximum(v, 1e-30) for k, v in means.items() if np.any(v[1:] > 0)}
        if not means:
            return []
        n_bins = len(next(iter(means.values())))
        frequencies = np.fft.fftfreq(max(self.shape), d=self.pixel_size)[:n_bins]
        return [
            {
                self.x_name: float(1.0 / frequency),
                **{k: float(10 * np.log10(v[i])) for k, v in means.items()},
            }
            for i, frequency in enumerate(frequencies)
            if frequency > 0
        ]
