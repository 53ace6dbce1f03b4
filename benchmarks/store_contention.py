"""Many writers on one MLflow store: the embedded sqlite file against the PostgreSQL server.

Each writer process is a training run: it creates a run, logs `--values` metric values one
request at a time (as per-epoch logging does), and ends the run FINISHED. A reader process
polls like an open UI page (search runs, read each run's history) while they write. For each
store and writer count: values written per second, the slowest single write, and every error.
The last line is the server's throughput over sqlite's at the largest writer count.

    python benchmarks/store_contention.py --writers 2 4 8 --values 100 --stores sqlite
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

EXPERIMENT = "contention"


def writer(uri: str, experiment_id: str, n_values: int, start: float, out: mp.Queue) -> None:
    # Quiet, and without the client's telemetry thread (it once failed a request here).
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.CRITICAL)  # errors are counted, not logged

    client = mlflow.MlflowClient(uri)
    time.sleep(max(0.0, start - time.time()))
    slowest, errors, written = 0.0, [], 0
    try:
        run_id = client.create_run(experiment_id).info.run_id
        for step in range(n_values):
            began = time.monotonic()
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            slowest = max(slowest, time.monotonic() - began)
            written += 1
        client.set_terminated(run_id, "FINISHED")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    out.put((written, slowest, errors))


def reader(uri: str, experiment_id: str, stop, out: mp.Queue) -> None:
    import mlflow

    client = mlflow.MlflowClient(uri)
    reads, errors = 0, []
    while not stop.is_set():
        try:
            for run in client.search_runs([experiment_id], max_results=200):
                client.get_metric_history(run.info.run_id, "loss")
            reads += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        time.sleep(0.05)
    out.put((reads, errors))


def measure(uri: str, n_writers: int, n_values: int) -> dict:
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    ctx = mp.get_context("spawn")
    results, reads, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    watcher = ctx.Process(target=reader, args=(uri, experiment_id, stop, reads))
    watcher.start()
    start = time.time() + 20 + 3 * n_writers  # every writer has imported mlflow by then
    writers = [
        ctx.Process(target=writer, args=(uri, experiment_id, n_values, start, results))
        for _ in range(n_writers)
    ]
    for process in writers:
        process.start()
    outcomes = [results.get(timeout=1800) for _ in writers]
    seconds = time.time() - start
    for process in writers:
        process.join()
    stop.set()
    n_reads, read_errors = reads.get(timeout=120)
    watcher.join()
    written = sum(o[0] for o in outcomes)
    return {
        "values_per_s": written / seconds,
        "lost": n_writers * n_values - written,
        "slowest_write_s": max(o[1] for o in outcomes),
        "errors": [e for o in outcomes for e in o[2]] + read_errors,
        "reads": n_reads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--values", type=int, default=50)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "server"])
    args = parser.parse_args()

    from nextframe.ops.processes import free_port
    from nextframe.ops.server import running_server

    with tempfile.TemporaryDirectory(prefix="store-contention-") as tmp:
        Path(tmp).chmod(0o711)  # PostgreSQL runs as `postgres` when we are root
        rates = {}
        with running_server(
            Path(tmp) / "server", port=free_port(), workers=2, log=Path(tmp) / "server.log"
        ) as server:
            uris = {"sqlite": f"sqlite:///{tmp}/mlflow.db", "server": server.url}
            for name in args.stores:
                uri = uris[name]
                for n_writers in args.writers:
                    row = measure(uri, n_writers, args.values)
                    rates[name, n_writers] = row["values_per_s"]
                    print(
                        f"{name:6s} writers {n_writers:2d}: {row['values_per_s']:7.1f} values/s, "
                        f"slowest write {row['slowest_write_s']:5.2f} s, lost {row['lost']}, "
                        f"UI reads {row['reads']}, errors {len(row['errors'])} "
                        f"{sorted(set(row['errors']))[:2]}",
                        flush=True,
                    )
    most = max(args.writers)
    if {"sqlite", "server"} <= set(args.stores):
        print(f"ratio {rates['server', most] / rates['sqlite', most]:.2f}")


if __name__ == "__main__":
    main()
