"""Weather-radar archives read with pysteps: which files, at what times, as rain rate in mm/h.

An archive is laid out as one entry of pysteps' data-source table says
(`pysteps.rcparams.data_sources`: root path, path format, file-name pattern, extension,
importer, time step), under the archive root the user names (pysteps-data's root, the folder
that holds `radar/`). Any field can be overridden for an archive of another layout.

pysteps is imported on first use, not with this module: it takes about 2 s and prints where
it found its configuration file, which is kept out of a stage's output.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from nextframe.errors import NextframeError
from nextframe.params import ArchiveParams, RadarParams

PARAM = "data.radar"
# The settings of `data.radar` that replace pysteps' entry for the network (None: keep it).
OVERRIDE_KEYS = (
    "root_path",
    "path_fmt",
    "fn_pattern",
    "fn_ext",
    "importer",
    "timestep",
    "importer_kwargs",
)
# The strftime codes a file name or path may hold, and the digits each stands for.
TIME_CODES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "j": r"\d{3}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
}
# Pixel sizes this close (relative) are one size: archives of both train together unchanged.
PIXEL_TOLERANCE = 0.01
# pysteps' `cartesian_unit` metadata -> metres in one unit, for pixel sizes in km.
METRES_PER_UNIT = {"m": 1.0, "km": 1000.0}


def layout_overrides(radar: RadarParams | ArchiveParams) -> dict[str, Any]:
    """The layout settings `radar` (or one of its `archives`) gives, for
    `ArchiveLayout.resolve`: one place reads them from params, for fetch and for a nowcast
    from an archive alike."""
    return {key: getattr(radar, key) for key in OVERRIDE_KEYS}


def _pysteps() -> ModuleType:
    """pysteps with its io and conversion modules, imported without its configuration print."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pysteps
        import pysteps.io.archive
        import pysteps.utils.conversion
        import pysteps.utils.dimension
    return pysteps


def radar_networks() -> list[str]:
    """The radar networks of pysteps' data-source table (its `*_nwp` entries are models)."""
    sources = _pysteps().rcparams.data_sources
    return sorted(name for name in sources if not name.endswith("_nwp"))


def _importer(name: str, origin: str = "", param: str = PARAM):
    """pysteps' importer function called `name`, or one line naming the known ones (and
    `origin`, where the name came from when the user did not give it)."""
    interface = _pysteps().io.interface
    try:
        return interface.get_method(name, "importer")
    except ValueError:
        known = ", ".join(sorted(getattr(interface, "_importer_methods", {})))
        raise NextframeError(
            f"{param}.importer: unknown pysteps importer {name!r}{origin} (known: {known})"
        ) from None


@dataclass(frozen=True)
class ArchiveLayout:
    """Where an archive's files are and how they are named, timed and read."""

    network: str
    root: Path  # the archive root as the user named it
    folder: Path  # root / pysteps' root_path (root itself when root_path is "")
    path_fmt: str
    fn_pattern: str
    fn_ext: str
    importer: str
    timestep_minutes: float
    importer_kwargs: dict[str, Any]
    param: str = PARAM  # which params name it, for errors: data.radar or data.radar.archives[i]

    @classmethod
    def resolve(
        cls, network: str, root: Path, overrides: Mapping[str, Any], param: str = PARAM
    ) -> ArchiveLayout:
        """pysteps' entry for `network`, each field replaced by a non-None override
        (`importer_kwargs` as a whole: another importer takes other arguments)."""
        known = radar_networks()
        if network not in known:
            raise NextframeError(
                f"{param}.network: unknown network {network!r} (known: {', '.join(known)})"
            )
        unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
        if unknown:
            raise NextframeError(
                f"{param}.{unknown[0]}: not a setting of the archive layout "
                f"(settings: {', '.join(OVERRIDE_KEYS)})"
            )
        entry = dict(_pysteps().rcparams.data_sources[network])
        entry.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("root_path", "path_fmt", "fn_pattern", "fn_ext", "importer"):
            if not isinstance(entry.get(key), str):
                raise NextframeError(f"{param}.{key}: must be a string, got {entry.get(key)!r}")
        timestep = entry.get("timestep")
        if isinstance(timestep, bool) or not isinstance(timestep, int | float) or timestep <= 0:
            raise NextframeError(
                f"{param}.timestep: must be a positive number of minutes, got {timestep!r}"
            )
        kwargs = entry.get("importer_kwargs", {})
        if not isinstance(kwargs, Mapping):
            raise NextframeError(
                f"{param}.importer_kwargs: must be a mapping of the importer's arguments, "
                f"got {kwargs!r}"
            )
        fn_ext = entry["fn_ext"].removeprefix(".")
        if not fn_ext or not entry["fn_pattern"]:
            empty = "fn_ext" if not fn_ext else "fn_pattern"
            raise NextframeError(f"{param}.{empty}: must not be empty")
        given = overrides.get("importer") is not None
        origin = "" if given else f", named by pysteps' {network} entry"
        _importer(entry["importer"], origin, param)
        root = Path(root)
        layout = cls(
            network=network,
            root=root,
            folder=root / entry["root_path"] if entry["root_path"] else root,
            path_fmt=entry["path_fmt"].strip("/"),
            fn_pattern=entry["fn_pattern"],
            fn_ext=fn_ext,
            importer=entry["importer"],
            timestep_minutes=float(timestep),
            importer_kwargs=dict(kwargs),
            param=param,
        )
        _path_regex(layout)  # a pattern's unsupported time code is a params error: say it now
        return layout

    def to_config(self) -> dict:
        """What was read, JSON-able (paths as strings)."""
        return {
            "network": self.network,
            "root": str(self.root),
            "folder": str(self.folder),
            "path_fmt": self.path_fmt,
            "fn_pattern": self.fn_pattern,
            "fn_ext": self.fn_ext,
            "importer": self.importer,
            "timestep_minutes": self.timestep_minutes,
            "importer_kwargs": dict(self.importer_kwargs),
        }


@dataclass(frozen=True)
class RadarFrame:
    time: datetime
    path: Path


@dataclass(frozen=True)
class Grid:
    """What must match for frames to be one archive: shape (H, W) and georeference. Lengths
    are in km (pysteps gives them in its metadata's `cartesian_unit`)."""

    shape: tuple[int, int]
    pixel_km: float
    projection: str
    corners: tuple[float, float, float, float]  # x1, y1, x2, y2 (lower left, upper right)


def _pattern_regex(pattern: str, param: str) -> tuple[str, list[str]]:
    """A regex for a pysteps name or path pattern (strftime codes, '?' for any character)
    and the time codes its groups capture, in order."""
    parts, codes = [], []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%" and i + 1 < len(pattern):
            code = pattern[i + 1]
            if code == "%":
                parts.append("%")
            elif code in TIME_CODES:
                parts.append(f"({TIME_CODES[code]})")
                codes.append(code)
            else:
                supported = " ".join(f"%{c}" for c in TIME_CODES)
                raise NextframeError(
                    f"{param}: time code %{code} in {pattern!r} is not supported "
                    f"(supported: {supported})"
                )
            i += 2
            continue
        parts.append("[^/]" if char == "?" else re.escape(char))
        i += 1
    return "".join(parts), codes


def _name_regex(layout: ArchiveLayout) -> tuple[re.Pattern, list[str]]:
    name, codes = _pattern_regex(layout.fn_pattern, f"{layout.param}.fn_pattern")
    return re.compile(name + re.escape("." + layout.fn_ext)), codes


def _path_regex(layout: ArchiveLayout) -> tuple[re.Pattern, list[str]]:
    """A regex for a file's path relative to the archive folder, and its groups' time codes."""
    name, name_codes = _name_regex(layout)
    if not layout.path_fmt:
        return name, name_codes
    path, path_codes = _pattern_regex(layout.path_fmt, f"{layout.param}.path_fmt")
    return re.compile(path + "/" + name.pattern), path_codes + name_codes


def _time_of(values: Sequence[str], codes: Sequence[str]) -> datetime | None:
    """The time the captured values spell, None where they spell none or contradict."""
    by_code: dict[str, str] = {}
    for code, value in zip(codes, values, strict=True):
        if by_code.setdefault(code, value) != value:
            return None
    fmt = " ".join(f"%{code}" for code in by_code)
    try:
        return datetime.strptime(" ".join(by_code.values()), fmt)
    except ValueError:
        return None


def _found_by_pysteps(time: datetime, path: Path, layout: ArchiveLayout) -> bool:
    """Whether pysteps' own archive search, asked for `time`, answers `path`."""
    archive = _pysteps().io.archive
    try:
        found, _ = archive.find_by_date(
            time,
            str(layout.folder),
            layout.path_fmt,
            layout.fn_pattern,
            layout.fn_ext,
            layout.timestep_minutes,
            silent=True,
        )
    except OSError:
        return False
    return found[0] is not None and Path(found[0]) == path


def find_frames(layout: ArchiveLayout) -> list[RadarFrame]:
    """Every file of the archive, sorted by time: those under the folder whose path matches
    the layout and that pysteps' `find_by_date` finds for their time."""
    if not layout.root.is_dir():
        raise NextframeError(f"{layout.param}.root: {layout.root}: no such folder")
    if not layout.folder.is_dir():
        raise NextframeError(
            f"{layout.param}.root: no folder {layout.folder} (the {layout.network} archive under "
            f"{layout.root}; {layout.param}.root_path names where it lies)"
        )
    path_regex, codes = _path_regex(layout)
    name_regex, _ = _name_regex(layout)
    depth = len(layout.path_fmt.split("/")) if layout.path_fmt else 0
    frames, misplaced = [], 0
    for dirpath, dirnames, filenames in os.walk(layout.folder):
        directory = Path(dirpath)
        rel_dir = directory.relative_to(layout.folder)
        if len(rel_dir.parts) >= depth:
            dirnames.clear()  # files lie exactly `depth` folders down
        dirnames.sort()
        for filename in sorted(filenames):
            if not name_regex.fullmatch(filename):
                continue
            path = directory / filename
            match = path_regex.fullmatch((rel_dir / filename).as_posix())
            time = _time_of(match.groups(), codes) if match else None
            if time is not None and _found_by_pysteps(time, path, layout):
                frames.append(RadarFrame(time, path))
            else:
                misplaced += 1
    if not frames:
        elsewhere = (
            f"; {misplaced} files of that name are not where the path format puts them"
            if misplaced
            else ""
        )
        raise NextframeError(
            f"{layout.param}.root: no file matching {layout.fn_pattern}.{layout.fn_ext} under "
            f"{layout.folder} (path format '{layout.path_fmt}'){elsewhere}"
        )
    return sorted(frames, key=lambda frame: (frame.time, str(frame.path)))


def split_sequences(
    frames: Sequence[RadarFrame], timestep_minutes: float
) -> list[list[RadarFrame]]:
    """Runs of frames exactly `timestep_minutes` apart; any gap (or repeated time) starts a
    new sequence."""
    step = timedelta(minutes=timestep_minutes)
    sequences: list[list[RadarFrame]] = []
    for frame in frames:
        if sequences and frame.time - sequences[-1][-1].time == step:
            sequences[-1].append(frame)
        else:
            sequences.append([frame])
    return sequences


def _short_reason(exc: Exception, path: Path) -> str:
    """An exception as a few words on one line, without the path the message names already."""
    text = str(exc).replace(f"'{path}'", "").replace(str(path), "")
    text = " ".join(text.split()).strip(" :")
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _grid_of(metadata: Mapping[str, Any], shape: tuple[int, int], path: Path) -> Grid:
    """The grid pysteps' metadata describes, its lengths in km."""
    unit = metadata.get("cartesian_unit")
    if unit is None:
        units = re.search(r"\+units=(\w+)", metadata.get("projection") or "")
        unit = units.group(1) if units else None
    if unit not in METRES_PER_UNIT:
        raise NextframeError(
            f"{path}: grid coordinates in {unit!r}, not metres or km: its pixel size in km is "
            "unknown"
        )
    km = 1000.0 / METRES_PER_UNIT[unit]
    try:
        pixel = float(metadata["xpixelsize"])
        corners = tuple(float(metadata[key]) for key in ("x1", "y1", "x2", "y2"))
    except (KeyError, TypeError, ValueError):
        raise NextframeError(
            f"{path}: pysteps found no georeference in it (xpixelsize, x1, y1, x2, y2)"
        ) from None
    return Grid(
        shape=(int(shape[0]), int(shape[1])),
        pixel_km=pixel / km,
        projection=str(metadata.get("projection") or ""),
        corners=tuple(c / km for c in corners),
    )


def read_rain_rate(frame: RadarFrame, layout: ArchiveLayout) -> tuple[np.ndarray, Grid]:
    """(H, W) float32 rain rate in mm/h, north up, NaN outside the radar's domain, and its
    grid. pysteps' metadata says the unit (mm per accumulation, dBZ with its Z-R relation)."""
    importer = _importer(layout.importer)
    conversion = _pysteps().utils.conversion
    path = frame.path
    # numpy warns of all-NaN slices while pysteps sums up an empty frame, and pysteps' GIF
    # reader leaves its file for the garbage collector to close: neither is a problem here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            precip, _, metadata = importer(str(path), **layout.importer_kwargs)
        except Exception as exc:
            raise NextframeError(
                f"{path}: cannot read {layout.importer} radar file ({_short_reason(exc, path)})"
            ) from exc
        try:
            precip, metadata = conversion.to_rainrate(precip, metadata)
        except Exception as exc:
            raise NextframeError(
                f"{path}: cannot convert its {metadata.get('unit')} values to mm/h "
                f"({_short_reason(exc, path)})"
            ) from exc
    rain = np.ma.filled(precip, np.nan).astype(np.float32)  # masked (no coverage): NaN
    if rain.ndim != 2:
        raise NextframeError(f"{path}: expected one 2-D radar map, got shape {rain.shape}")
    rain[~np.isfinite(rain)] = np.nan
    np.maximum(rain, 0.0, out=rain)  # NaN stays NaN
    if metadata.get("yorigin") == "lower":
        rain = np.ascontiguousarray(rain[::-1])
    return rain, _grid_of(metadata, rain.shape, path)


def coarsen(rain_mmh: np.ndarray, grid: Grid, factor: int) -> tuple[np.ndarray, Grid]:
    """A frame (H, W) in mm/h on pixels `factor` times as large, each the mean of its
    factor x factor pixels (pysteps' `aggregate_fields_space`; NaN where any of them is), and
    its grid; rows and columns beyond a whole block are left out."""
    if factor == 1:
        return rain_mmh, grid
    dimension = _pysteps().utils.dimension
    height, width = (n // factor * factor for n in rain_mmh.shape)
    # Pixel sizes of 1 and a window of `factor`: whole numbers, no rounding of km sizes.
    unit_pixels = {"unit": "mm/h", "xpixelsize": 1.0, "ypixelsize": 1.0}
    coarse, _ = dimension.aggregate_fields_space(
        rain_mmh[:height, :width], unit_pixels, float(factor)
    )
    x1, _, _, y2 = grid.corners
    pixel_km = grid.pixel_km * factor
    shape = (height // factor, width // factor)
    # Rows are north up: the rows left out are the southern ones, columns the eastern ones.
    corners = (x1, y2 - shape[0] * pixel_km, x1 + shape[1] * pixel_km, y2)
    return coarse.astype(np.float32), Grid(shape, pixel_km, grid.projection, corners)


def coarsening(grid: Grid, pixel_km: float, where: str) -> int:
    """How many of `grid`'s pixels make one of `pixel_km` per side, to within 1 % (networks'
    nominal 1 km pixels differ in the fourth digit); one line if no whole number does
    (`where`: the archive's param)."""
    factor = round(pixel_km / grid.pixel_km)
    if factor < 1 or not math.isclose(factor * grid.pixel_km, pixel_km, rel_tol=PIXEL_TOLERANCE):
        raise NextframeError(
            f"{where}: its {grid.pixel_km:g} km pixels do not make the first archive's "
            f"{pixel_km:g} km ones (a whole number of them per side is needed)"
        )
    return factor


def is_empty(rain_mmh: np.ndarray) -> bool:
    """A frame without one valid pixel (all NaN): skipped and counted by the caller."""
    return not np.isfinite(rain_mmh).any()


def _describe(grid: Grid, other: Grid) -> str:
    """A grid in a few words, with the part that differs from `other`."""
    text = f"{grid.shape[0]}x{grid.shape[1]} at {grid.pixel_km:g} km"
    if grid.shape == other.shape and _close(grid.pixel_km, other.pixel_km):
        if grid.projection != other.projection:
            text += f", projection {grid.projection or 'none'}"
        else:
            text += ", corners " + ", ".join(f"{c:g}" for c in grid.corners)
    return text


def _close(a: float, b: float) -> bool:
    """Equal lengths in km, to a millimetre: metadata computed by a projection may round."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _same(grid: Grid, first: Grid) -> bool:
    return (
        grid.shape == first.shape
        and grid.projection == first.projection
        and _close(grid.pixel_km, first.pixel_km)
        and all(_close(a, b) for a, b in zip(grid.corners, first.corners, strict=True))
    )


def check_same_grid(grid: Grid, first: Grid, path: Path) -> None:
    """Refuse a frame whose grid is not the archive's first one."""
    if not _same(grid, first):
        raise NextframeError(
            f"{path}: frame on another grid ({_describe(grid, first)}, "
            f"expected {_describe(first, grid)})"
        )


def latest_context(
    root: Path,
    network: str,
    overrides: Mapping[str, Any],
    n_frames: int,
    end: datetime | None = None,
) -> tuple[np.ndarray, list[RadarFrame], ArchiveLayout]:
    """The `n_frames` consecutive frames ending at `end` (default: the archive's last frame)
    of the archive under `root`, or of the files directly in the folder `root` (flat), as
    rain rates (T, H, W) in mm/h with NaN outside the domain: what a nowcast starts from."""
    layout = ArchiveLayout.resolve(network, root, overrides)
    try:
        frames = find_frames(layout)
    except NextframeError as first_error:
        flat = {**overrides, "root_path": "", "path_fmt": ""}
        try:
            layout = ArchiveLayout.resolve(network, root, flat)
            frames = find_frames(layout)
        except NextframeError:
            raise first_error from None
    if end is not None:
        frames = [frame for frame in frames if frame.time <= end]
        if not frames or frames[-1].time != end:
            raise NextframeError(
                f"{layout.folder}: no {network} frame at {end:%Y-%m-%d %H:%M} to nowcast from"
            )
    run = split_sequences(frames, layout.timestep_minutes)[-1] if frames else []
    if len(run) < n_frames:
        raise NextframeError(
            f"{layout.folder}: a nowcast needs {n_frames} consecutive frames "
            f"{layout.timestep_minutes:g} minutes apart up to {frames[-1].time:%Y-%m-%d %H:%M}, "
            f"found {len(run)}"
        )
    picked = run[-n_frames:]
    rain, first = read_rain_rate(picked[0], layout)
    maps = [rain]
    for frame in picked[1:]:
        rain, grid = read_rain_rate(frame, layout)
        check_same_grid(grid, first, frame.path)
        maps.append(rain)
    return np.stack(maps), picked, layout
