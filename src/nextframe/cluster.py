"""Training across processes and hosts, on JAX's distributed runtime (the one multi-host TPU
and GPU jobs use): Keras' `KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator's host:port, or
every process's, comma-separated), `KERAS_DISTRIBUTION_NUM_PROCESSES` and
`KERAS_DISTRIBUTION_PROCESS_ID` say which cluster this process joins, and
`keras.distribution.initialize` joins it. `DataParallel` then spans every device of every
process; each process feeds its own share of every global batch
(`nextframe.data.dataset.IndexedBatches.share`).

Process 0, the chief, alone writes outputs, backups and MLflow runs; every process resumes
from the chief's backup, so it must sit on storage they all see (one host, or a shared
filesystem): the followers check they see the chief's state (`from_chief`, `first_problem`)
and all stop with one line if one does not. When a process dies, the
others' next collective fails at once (gloo on CPU, NCCL on GPUs); `lost_processes` then asks
the survivors to check in, names who did not, and the stage ends with that one line,
immediately (`os._exit`), before the runtime's own heartbeat watchdog would abort it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from nextframe.errors import NextframeError

ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
# How long survivors of a failed collective wait for each other to check in.
CHECK_IN_SECONDS = 3.0
# How long a process waits for another to publish what it must agree on.
AGREE_SECONDS = 600.0


@dataclass(frozen=True)
class Cluster:
    """Which of how many training processes this is; one process unless the variables say."""

    process: int = 0
    processes: int = 1

    @property
    def chief(self) -> bool:
        """Process 0: the one that writes outputs, backups and the MLflow run."""
        return self.process == 0

    @property
    def joined(self) -> bool:
        return self.processes > 1

    def describe(self) -> str:
        return f"process {self.process} of {self.processes}"


ONE_PROCESS = Cluster()  # training alone, as without the variables


def devices_where(processes: int) -> str:
    """How an error names the devices data parallel training spans."""
    return f"devices of {processes} processes" if processes > 1 else "visible devices"


def check_batch_size(batch_size: int, n_devices: int, processes: int) -> None:
    """Data parallel: every device takes an equal share of every batch."""
    if batch_size % n_devices:
        raise NextframeError(
            f"params.yaml: train.batch_size must be a multiple of the {n_devices} "
            f"{devices_where(processes)} (data parallel), got {batch_size}"
        )


@dataclass(frozen=True)
class EpochSplit:
    """An epoch of `rows` clips (`dropped` left out) in `batches` global batches; a process
    feeds `process_rows` of each, `last_process_rows` of the last."""

    rows: int
    dropped: int
    batches: int
    process_rows: int
    last_process_rows: int


def split_epoch(
    rows: int, batch_size: int, processes: int, local_devices: int, rows_param: str
) -> EpochSplit:
    """Batches of `batch_size` over `rows` clips such that every batch, the last included,
    splits evenly over each process's `local_devices`: the last batch is cut to a multiple of
    every device (JAX cannot shard it otherwise), which leaves out fewer clips than there
    are devices. Too few clips for one row per device is refused, naming `rows_param`."""
    n_devices = processes * local_devices
    check_batch_size(batch_size, n_devices, processes)
    if rows < n_devices:
        raise NextframeError(
            f"params.yaml: {rows_param} must be at least the {n_devices} "
            f"{devices_where(processes)} (each batch splits over them), got {rows}"
        )
    kept = rows - rows % n_devices
    full, last = divmod(kept, batch_size)
    last_rows = last or batch_size
    return EpochSplit(
        rows=kept,
        dropped=rows - kept,
        batches=full + (last > 0),
        process_rows=batch_size // processes,
        last_process_rows=last_rows // processes,
    )


class ProcessLost(NextframeError):
    """A process of the cluster is gone: the survivors stop at once, with this line."""


def cluster_from_env(environ: Mapping[str, str] = os.environ) -> Cluster:
    """The cluster `environ` describes, checked: one line for any inconsistency."""
    raw_count = environ.get(NUM_PROCESSES, "").strip()
    if not raw_count:
        return ONE_PROCESS
    try:
        processes, process = int(raw_count), int(environ.get(PROCESS_ID, "").strip())
    except ValueError:
        raise NextframeError(
            f"{NUM_PROCESSES} and {PROCESS_ID} must be integers, got {raw_count!r} and "
            f"{environ.get(PROCESS_ID)!r}"
        ) from None
    if processes < 1 or not 0 <= process < processes:
        raise NextframeError(
            f"{PROCESS_ID} must be in [0, {NUM_PROCESSES}={processes}), got {process}"
        )
    if processes > 1 and not environ.get(ADDRESSES, "").strip():
        raise NextframeError(f"{ADDRESSES} must name the coordinator (host:port of process 0)")
    return Cluster(process, processes)


def join(cluster: Cluster) -> None:
    """Join `cluster` (a no-op for one process). Before any JAX computation: the runtime
    refuses to start once a backend is in use."""
    if not cluster.joined:
        return
    import keras

    if keras.backend.backend() != "jax":
        raise NextframeError(
            f"training in {cluster.processes} processes runs on JAX: set KERAS_BACKEND=jax "
            "(the GPU environment's default)"
        )
    import jax

    # CPU collectives between processes (GPUs use NCCL whatever this says).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()  # reads the three variables
    if jax.process_count() != cluster.processes:
        raise NextframeError(
            f"joined a cluster of {jax.process_count()} processes, expected {cluster.processes}"
        )


def is_collective_failure(exc: BaseException) -> bool:
    """Whether `exc` is a cross-process collective that failed because a peer went away."""
    text = f"{type(exc).__name__}: {exc}"
    return any(mark in text for mark in ("Gloo", "gloo", "NCCL", "Connection reset", "UNAVAILABLE"))


def lost_processes(cluster: Cluster, exc: BaseException) -> ProcessLost:
    """After a failed collective: every survivor checks in with the coordinator; those that
    did not within `CHECK_IN_SECONDS` are named. If the coordinator itself is gone, it is
    process 0."""
    reason = " ".join(str(exc).split())[:160]
    try:
        from jax._src.distributed import global_state  # the runtime's key-value store

        client = global_state.client
        client.key_value_set(f"nextframe/alive/{cluster.process}", "1", allow_overwrite=True)
        time.sleep(CHECK_IN_SECONDS)
        alive = {
            int(key.rsplit("/", 1)[-1]) for key, _ in client.key_value_dir_get("nextframe/alive/")
        }
        gone = [p for p in range(cluster.processes) if p not in alive]
    except Exception:  # the coordinator's store is unreachable: process 0 is gone
        gone = [0]
    who = ", ".join(f"process {p}" for p in gone) or "a process"
    return ProcessLost(
        f"training stopped: {who} of {cluster.processes} left the cluster ({reason}); "
        "the last finished epoch's backup resumes it: start every process again"
    )


def exit_now(code: int) -> None:
    """Leave without the distributed runtime's shutdown, which would wait for (or abort on)
    the processes that are gone."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _runtime_store():
    """The distributed runtime's key-value store, which every process of the cluster reads."""
    from jax._src.distributed import global_state

    return global_state.client


def from_chief(cluster: Cluster, name: str, value: str) -> str:
    """The chief's `value` of `name` on every process (each passes its own; only the chief's
    is kept): a follower waits until the chief has published it."""
    if not cluster.joined:
        return value
    store, key = _runtime_store(), f"nextframe/{name}"
    if cluster.chief:
        store.key_value_set(key, value)
        return value
    return store.blocking_key_value_get(key, int(AGREE_SECONDS * 1000))


def first_problem(cluster: Cluster, name: str, problem: str | None) -> str | None:
    """Every process's `problem` (None: none) of `name`, gathered: the first process's that
    has one, the same on every process, so all of them stop with the same line."""
    if not cluster.joined:
        return problem
    store, wait_ms = _runtime_store(), int(AGREE_SECONDS * 1000)
    store.key_value_set(f"nextframe/{name}/{cluster.process}", json.dumps(problem))
    problems = [
        json.loads(store.blocking_key_value_get(f"nextframe/{name}/{process}", wait_ms))
        for process in range(cluster.processes)
    ]
    store.wait_at_barrier(f"nextframe/{name}", wait_ms)  # none leaves before all have read
    return next((found for found in problems if found is not None), None)
