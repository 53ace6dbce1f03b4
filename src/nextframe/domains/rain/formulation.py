"""What a radar model predicts and how its nowcast is made (`Formulation`), recorded in the
model beside its rain scale: every way of using the model makes the same nowcast from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Formulation:
    """What a radar model predicts and how its nowcast is made, recorded in the model.

    `frame`: `eulerian`, the rain as the radar sees it; `lagrangian`, the rain in the frame of
    its motion (`nextframe.domains.rain.lagrangian`). `probmatching`: `cdf` gives each lead the
    last observed frame's distribution of rain (its wet area and intensities, ranks kept), as
    S-PROG does to its own output (`pysteps.postprocessing.probmatching`); `none` keeps
    the network's values."""

    frame: Literal["eulerian", "lagrangian"] = "eulerian"
    probmatching: Literal["none", "cdf"] = "none"

    @classmethod
    def of(cls, radar) -> Formulation:
        """The formulation `data.radar` params ask for."""
        return cls(radar.formulation, radar.probmatching)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Formulation:
        """A recorded formulation; a radar model saved before formulations: Eulerian."""
        return cls(**(config or {}))
