"""The `nextframe` command (also `python -m nextframe`): `nextframe predict CLIP`, `nextframe
export FOLDER`, `nextframe tune`."""

from __future__ import annotations

import argparse

from nextframe import cli
from nextframe.ops import export, predict, tune


def _main() -> None:
    parser = argparse.ArgumentParser(prog="nextframe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict_parser = commands.add_parser(
        "predict",
        help="predict the next frames of your own clip",
        description=predict.__doc__.splitlines()[0],
    )
    predict.add_arguments(predict_parser)
    export_parser = commands.add_parser(
        "export",
        help="write Moving MNIST as a folder of clips (videos, GIFs, arrays, PNG frames)",
        description=export.__doc__.splitlines()[0],
    )
    export.add_arguments(export_parser)
    tune_parser = commands.add_parser(
        "tune",
        help="search the params with an Optuna study that many workers share",
        description=tune.__doc__.splitlines()[0],
    )
    tune.add_arguments(tune_parser)
    args = parser.parse_args()
    {"predict": predict.run, "export": export.run, "tune": tune.run}[args.command](args)


def main() -> None:
    cli.run(_main)


if __name__ == "__main__":
    main()
