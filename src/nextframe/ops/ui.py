"""`make ui`: MLflow's UI on a project store, and the address that opens it on the table of the
nextframe experiment's training runs.

The experiment is tagged as model training (`mlflow.experimentKind`), but MLflow 3.17's UI
opens every experiment as its sidebar switch says (GenAI unless switched, remembered per
browser), on an overview of traces; `?workflowType=machine_learning` in the address opens it
on its runs instead. So the experiment is made (tagged) first, and its address printed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nextframe import cli
from nextframe.ops import tracking


def runs_url(host: str, port: int, experiment_id: str) -> str:
    return f"http://{host}:{port}/#/experiments/{experiment_id}?workflowType=machine_learning"


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--store", type=Path, default=Path.cwd(), help="the repo whose store")
    args = parser.parse_args()
    root = args.store.resolve()
    backend = f"sqlite:///{root / tracking.STORE_FILE}"
    os.environ["MLFLOW_TRACKING_URI"] = backend  # this store, whatever the shell points at
    # MLflow's GenAI job runners (eight more processes) serve nothing this project logs.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    experiment_id = tracking.configure(root)
    host = "127.0.0.1"
    print(f"ui: the nextframe runs: {runs_url(host, args.port, experiment_id)}", flush=True)
    command = ["mlflow", "ui", "--host", host, "--port", str(args.port)]
    command += ["--backend-store-uri", backend]
    command += ["--default-artifact-root", tracking.artifact_location(root)]
    os.execvp(command[0], command)


def main() -> None:
    cli.run(_main)


if __name__ == "__main__":
    main()
