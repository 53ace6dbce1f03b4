"""The page template for `dvc plots show` / `dvc plots diff`, with vega inlined.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so its charts are blank
without internet. `make setup` writes this template from the vl-convert-python package's
offline bundle, and `.dvc/config` (`plots.html_template`) points DVC to it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import vl_convert
from dvc_render.vega_templates import TEMPLATES

from nextframe.errors import NextframeError
from nextframe.io import write_text

# DVC fills `{plot_divs}` and `{refresh_tag}`. `{scripts}` is left out on purpose: DVC puts
# its CDN <script> tags there. Each plot div calls `vegaEmbed` inline, so the bundle is a
# plain script in <head>, run before them.
_HEAD = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
    <!-- %s, inlined by nextframe.ops.plots_page: this page loads nothing from the internet -->
    <script>
"""
_TAIL = """
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""
# Text the bundle must not contain: it would end the inline <script> early, or be replaced
# by DVC, which substitutes its placeholders anywhere in the page.
_FORBIDDEN = ("</script", "<!--", "{plot_divs}", "{refresh_tag}", "{scripts}")


def dvc_vega_lite_major() -> str:
    """The vega-lite major version ("5") that DVC's plot templates declare in `$schema`."""
    majors = set()
    for template in TEMPLATES:
        schema = template.DEFAULT_CONTENT.get("$schema", "")
        match = re.search(r"/vega-lite/v(\d+)\.json$", schema)
        if match is None:
            raise NextframeError(f"DVC template {template.DEFAULT_NAME}: no vega-lite $schema")
        majors.add(match.group(1))
    if len(majors) != 1:
        raise NextframeError(f"DVC's templates mix vega-lite versions {sorted(majors)}")
    return majors.pop()


def bundled_vega_lite_version(major: str) -> str:
    """The newest vega-lite `major`.x that vl-convert can bundle, e.g. "5.21"."""
    versions = [v for v in vl_convert.get_vegalite_versions() if v.split(".")[0] == major]
    if not versions:
        raise NextframeError(
            f"vl-convert-python {vl_convert.__version__} bundles no vega-lite v{major} "
            f"(it has {', '.join(vl_convert.get_vegalite_versions())}); DVC's plots need v{major}"
        )
    return max(versions, key=lambda v: tuple(int(part) for part in v.split(".")))


def page_template() -> str:
    """The full template: vega, vega-lite (DVC's major) and vega-embed in one inline script."""
    vega_lite = bundled_vega_lite_version(dvc_vega_lite_major())
    bundle = vl_convert.javascript_bundle(vl_version=vega_lite)
    found = [text for text in _FORBIDDEN if text in bundle.lower()]
    if found:
        raise NextframeError(f"the vega bundle contains {found}: it cannot be inlined as is")
    versions = (
        f"vega {vl_convert.get_vega_version()}, vega-lite {vega_lite}, "
        f"vega-embed {vl_convert.get_vega_embed_version()}"
    )
    # A function scope keeps the bundle's top-level names (minified, one letter) out of the
    # page's globals; the bundle sets window.vegaEmbed itself, which DVC's plot divs call.
    return _HEAD % versions + "(() => {\n" + bundle + "\n})();" + _TAIL


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the offline `dvc plots` page template.")
    parser.add_argument("out", type=Path, help="where `.dvc/config` plots.html_template points")
    args = parser.parse_args()
    write_text(args.out, page_template())
    print(f"{args.out}: dvc plots page template, vega inlined")


if __name__ == "__main__":
    from nextframe import cli

    cli.run(main)
