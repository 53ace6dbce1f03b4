"""Named params presets: partial params files in `presets/` merged into params.yaml.

A preset names only the keys it changes; applying it rewrites those values in params.yaml in
place, keeping its comments and order, and only after the merged result validates. So
`dvc exp run` (or `make repro`) afterwards runs exactly the preset, and `git diff params.yaml`
shows what it changed.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import yaml

from nextframe.errors import NextframeError
from nextframe.io import write_text
from nextframe.params import parse_params


def load_preset(path: Path) -> dict[str, Any]:
    """A preset's overrides as a mapping (safe YAML)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NextframeError(f"{path}: no such preset") from None
    except yaml.YAMLError:
        raise NextframeError(f"{path}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise NextframeError(f"{path}: must be a YAML mapping of params keys")
    return raw


def merged(base: dict, overrides: dict) -> dict:
    """`overrides` written over `base`, section by section, as a new mapping."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) else value
    return out


def _merge_into(target: dict, overrides: dict, prefix: str = "") -> list[str]:
    """Write `overrides` into `target` (a ruamel mapping) in place; the dotted keys changed."""
    changed = []
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if key not in target:
            raise NextframeError(f"preset: unknown key {dotted}")
        if isinstance(value, dict):
            changed += _merge_into(target[key], value, f"{dotted}.")
        elif target[key] != value:
            if isinstance(value, list):
                from ruamel.yaml.comments import CommentedSeq

                value = CommentedSeq(value)
                value.fa.set_flow_style()  # [64, 64, 64] on one line, as params.yaml writes lists
            target[key] = value
            changed.append(dotted)
    return changed


def apply_preset(preset_path: Path, params_path: Path) -> list[str]:
    """Merge a preset into params.yaml, validated first; returns the dotted keys it changed."""
    return apply_overrides(load_preset(preset_path), params_path, f"preset {preset_path.stem}")


def apply_overrides(overrides: dict, params_path: Path, label: str) -> list[str]:
    """Write `overrides` (same nesting as params.yaml) into params.yaml in place, comments and
    order kept, only if the result validates; the dotted keys changed. `label` says where the
    values come from, in the validation's message."""
    from ruamel.yaml import YAML, YAMLError  # only here: training reads presets without it

    round_trip = YAML()  # keeps comments, order and flow-style lists
    round_trip.width = 4096
    # `null` stays `null` (ruamel would write an empty value: valid, but not what was there)
    round_trip.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    try:
        document = round_trip.load(params_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NextframeError(f"{params_path}: cannot read ({exc.strerror or exc})") from None
    except YAMLError:
        raise NextframeError(f"{params_path}: not valid YAML") from None
    if not isinstance(document, dict):
        raise NextframeError(f"{params_path}: must be a YAML mapping of params keys")
    changed = _merge_into(document, overrides)
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    text = buffer.getvalue()
    parse_params(yaml.safe_load(text), f"{params_path.name} with {label}")
    write_text(params_path, text)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply a params preset to params.yaml.")
    parser.add_argument("name", help="a file presets/<name>.yaml, or a path to one")
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--presets-dir", default="presets", type=Path)
    args = parser.parse_args()
    path = Path(args.name)
    if not path.suffix:
        path = args.presets_dir / f"{args.name}.yaml"
    changed = apply_preset(path, args.params)
    print(
        f"{args.params}: preset {path.stem} changed {len(changed)} value(s): {', '.join(changed)}"
    )


if __name__ == "__main__":
    from nextframe import cli

    cli.run(main)
