"""The data sources, found by name (`data.source`) in one table, in the spirit of pysteps'
`get_method`: each is a `nextframe.data.source.Source`, which fetches its windows and splits
them, so the stages name no source.

- `generated`, `download`, `openstl`: Moving MNIST (`nextframe.data.mnist_source`).
- `folder`: your own clips (`nextframe.data.folder_source`).
- `radar`: a weather-radar archive, read with pysteps (`nextframe.data.radar_source`).

A new source is one `Source` subclass and one line here (and its name in params' schema).
"""

from __future__ import annotations

from nextframe.data.folder_source import FolderSource
from nextframe.data.mnist_source import DownloadSource, GeneratedSource, OpenStlSource
from nextframe.data.radar_source import RadarSource
from nextframe.data.source import Source
from nextframe.errors import NextframeError

SOURCES: dict[str, Source] = {
    "generated": GeneratedSource(),
    "download": DownloadSource(),
    "openstl": OpenStlSource(),
    "folder": FolderSource(),
    "radar": RadarSource(),
}


def get_source(name: str) -> Source:
    """The source called `name` (params' `data.source`)."""
    try:
        return SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise NextframeError(f"data.source: unknown source {name!r} (known: {known})") from None
