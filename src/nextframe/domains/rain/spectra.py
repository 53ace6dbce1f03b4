"""The radially averaged power spectrum of each nowcast at 30 and 60 minutes beside the
observed rain's (`pysteps.utils.spectral.rapsd`), as DGMR's authors show blur: a forecast
that averages uncertain rain away has less power than the truth at small wavelengths.
Averaged over the test windows of one grid, mergeable across worker processes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nextframe.motion import pysteps

SPECTRA_MINUTES = (30, 60)


class Spectra:
    """Sums of each (nowcast, lead) field's spectrum over windows on a grid of `shape` at
    `pixel_km`; a field of another shape (another archive's grid) is left out."""

    def __init__(self, shape: tuple[int, int], pixel_km: float, timestep_minutes: float) -> None:
        self.shape, self.pixel_km = tuple(shape), pixel_km
        self.timestep_minutes = timestep_minutes
        self._sums: dict[tuple[str, int], np.ndarray] = {}
        self._counts: dict[tuple[str, int], int] = {}

    def leads(self, n_leads: int) -> Iterable[tuple[int, int]]:
        """(0-based lead, minutes) of `SPECTRA_MINUTES` within `n_leads` leads."""
        for minutes in SPECTRA_MINUTES:
            lead = round(minutes / self.timestep_minutes) - 1
            if 0 <= lead < n_leads and abs((lead + 1) * self.timestep_minutes - minutes) < 1e-6:
                yield lead, minutes

    def add_leads(self, name: str, forecast_mmh: np.ndarray) -> None:
        """`forecast_mmh` (L, H, W): its fields at `SPECTRA_MINUTES`, no-data as dry."""
        if tuple(forecast_mmh.shape[1:]) != self.shape:
            return
        for lead, minutes in self.leads(len(forecast_mmh)):
            field = np.nan_to_num(np.asarray(forecast_mmh[lead], dtype=np.float64), nan=0.0)
            power = pysteps().utils.spectral.rapsd(field, fft_method=np.fft)
            key = (name, minutes)
            self._sums[key] = self._sums.get(key, 0.0) + power
            self._counts[key] = self._counts.get(key, 0) + 1

    def merge(self, other: Spectra) -> None:
        """Add `other`'s windows (a worker's) to these."""
        for key, power in other._sums.items():
            self._sums[key] = self._sums.get(key, 0.0) + power
            self._counts[key] = self._counts.get(key, 0) + other._counts[key]

    def rows(self) -> list[dict[str, float]]:
        """One row per wavelength (km, longest first, the mean left out): each nowcast's and
        the observation's mean power at each of `SPECTRA_MINUTES`, in dB ((mm/h)^2)."""
        if not self._sums:
            return []
        size = max(self.shape)
        frequencies = np.fft.fftfreq(size, d=self.pixel_km)[: len(next(iter(self._sums.values())))]
        means = {
            f"{name}_{minutes}min": self._sums[(name, minutes)] / self._counts[(name, minutes)]
            for name, minutes in sorted(self._sums, key=lambda k: (k[1], k[0] != "observed", k[0]))
        }
        with np.errstate(divide="ignore"):
            return [
                {
                    "wavelength_km": float(1.0 / frequency),
                    **{k: float(10 * np.log10(v[i])) for k, v in means.items()},
                }
                for i, frequency in enumerate(frequencies)
                if frequency > 0
            ]
