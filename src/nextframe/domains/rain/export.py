"""An ensemble nowcast as forecasters open it: CF-compliant NetCDF written by pysteps' exporter
(`pysteps.io.exporters`: the members as `precip_intensity` (ens_number, time, y, x) in mm/h,
the grid's projection as a CF grid mapping with x, y, lon and lat, lead times as seconds since
the last observed frame), plus each threshold's exceedance probability
(`pysteps.postprocessing.ensemblestats.excprob`) as `exceedance_probability` (threshold, time,
y, x) in [0, 1], NaN outside the radar's domain. xarray, Panoply and GIS tools read it."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from nextframe.data.radar import METRES_PER_UNIT, Grid
from nextframe.motion import pysteps, quiet


def exceedance_probabilities(members_mmh: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """(M, L, H, W) mm/h -> (len(thresholds), L, H, W): the share of members at or above each
    threshold, NaN where no member has data."""
    return np.asarray(
        pysteps().postprocessing.ensemblestats.excprob(
            members_mmh, list(thresholds), ignore_nan=True
        ),
        dtype=np.float32,
    ).reshape(len(thresholds), *members_mmh.shape[1:])


def _metadata(grid: Grid) -> dict:
    """pysteps' metadata for `grid`, its coordinates in the projection's own unit."""
    units = re.search(r"\+units=(\w+)", grid.projection)
    unit = units.group(1) if units and units.group(1) in METRES_PER_UNIT else "m"
    per_km = 1000.0 / METRES_PER_UNIT[unit]
    x1, y1, x2, y2 = (corner * per_km for corner in grid.corners)
    return {
        "projection": grid.projection,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "xpixelsize": grid.pixel_km * per_km,
        "ypixelsize": grid.pixel_km * per_km,
        "cartesian_unit": unit,
        "yorigin": "upper",
        "unit": "mm/h",
        "institution": "nextframe",
    }


def write_ensemble_netcdf(
    path: Path,
    members_mmh: np.ndarray,
    thresholds: Sequence[float],
    grid: Grid,
    last_observed: datetime,
    timestep_minutes: float,
) -> Path:
    """Write `path` (.nc), atomically: the members (M, L, H, W) mm/h of a nowcast from
    `last_observed`, every `timestep_minutes`, on `grid`, and their exceedance probabilities
    at `thresholds` (mm/h)."""
    import netCDF4

    n_members, n_leads, height, width = members_mmh.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as folder:
        exporters = pysteps().io.exporters
        with quiet():
            exporter = exporters.initialize_forecast_exporter_netcdf(
                folder,
                "nowcast",
                last_observed,
                timestep_minutes,
                n_leads,
                (height, width),
                _metadata(grid),
                n_ens_members=n_members,
            )
            exporters.export_forecast_dataset(members_mmh.astype(np.float32), exporter)
            exporters.close_forecast_files(exporter)
        written = Path(folder) / "nowcast.nc"
        with netCDF4.Dataset(written, "a") as dataset:
            dataset.createDimension("threshold", len(thresholds))
            levels = dataset.createVariable("threshold", np.float32, ("threshold",))
            levels.units = "mm h-1"
            levels.long_name = "rain rate threshold"
            levels[:] = np.asarray(thresholds, dtype=np.float32)
            probability = dataset.createVariable(
                "exceedance_probability",
                np.float32,
                ("threshold", "time", "y", "x"),
                zlib=True,
                fill_value=np.float32(np.nan),
            )
            probability.units = "1"
            probability.long_name = "probability of a rain rate at or above the threshold"
            grid_mapping = dataset.variables["precip_intensity"].__dict__.get("grid_mapping")
            if grid_mapping is not None:
                probability.grid_mapping = grid_mapping
            probability.coordinates = "lon lat"
            probability[:] = exceedance_probabilities(members_mmh, thresholds)
        written.replace(path)  # the temporary folder is beside `path`: one atomic rename
    return path
