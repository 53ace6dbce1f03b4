"""`make server`: an MLflow tracking server on PostgreSQL, with artifacts proxied through it.

The backend store is the database `MLFLOW_BACKEND_URI` names, or else a project-local
PostgreSQL cluster (`.mlflow-server/pg`), initialised on first use and running as long as the
server does. Clients set `MLFLOW_TRACKING_URI` to the server and move artifacts through it
(`mlflow-artifacts:/`), so they share no filesystem with it. PostgreSQL refuses to run as
root; as root, the cluster runs as the `postgres` user.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nextframe import cli
from nextframe.errors import NextframeError
from nextframe.ops.processes import free_port, port_is_free, process_group, wait_until_serving

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"  # the account PostgreSQL runs as when we are root
DB_ROLE = "mlflow"  # the cluster's superuser, who logs in with the password in `pg-password`
DB_NAME = "mlflow"
# `nextframe tune`'s studies, in a database of their own: Optuna and MLflow both version
# their schema in an `alembic_version` table.
STUDIES_DB = "optuna"
START_SECONDS = 120  # a fresh database makes `mlflow server` migrate its schema first


@dataclass
class Database:
    uri: str  # without the password
    password: str | None  # given to `mlflow server` as PGPASSWORD
    process: subprocess.Popen | None  # the postgres started here; None if given or running


@dataclass
class Server:
    url: str
    backend_uri: str  # without the password
    mlflow: subprocess.Popen
    postgres: subprocess.Popen | None  # None: a database given by URL, or already running
    studies_uri: str | None = None  # the project-local cluster's Optuna database, no password
    password_file: Path | None = None  # the cluster's password, for `studies_uri`


def _as_cluster_owner() -> dict:
    """Popen arguments that run PostgreSQL's programs as `postgres` when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise NextframeError(
            f"PostgreSQL refuses to run as root and there is no {PG_OS_USER!r} user: "
            "install postgresql-15 (apt-get install postgresql-15)"
        ) from None
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _give_to_cluster_owner(path: Path) -> None:
    owner = _as_cluster_owner()
    if owner:
        os.chown(path, owner["user"], owner["group"])


def _check_postgres_installed() -> None:
    if not (PG_BIN / "postgres").is_file():
        raise NextframeError(
            f"PostgreSQL 15 is not in {PG_BIN}: install postgresql-15 (or set PG_BIN), "
            "or set MLFLOW_BACKEND_URI to an existing database"
        )


def init_cluster(data_dir: Path, password_file: Path) -> None:
    """initdb a cluster whose one role (`mlflow`) logs in with a password."""
    _check_postgres_installed()
    owner = _as_cluster_owner()
    data_dir.mkdir(parents=True, exist_ok=True)
    _give_to_cluster_owner(data_dir)
    # created private: nobody else may read the password, even for a moment
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(24) + "\n")
    password_file.chmod(0o600)  # if an earlier try left it with other permissions
    _give_to_cluster_owner(password_file)
    if owner and subprocess.run(["test", "-w", str(data_dir)], **owner).returncode != 0:
        raise NextframeError(
            f"the {PG_OS_USER} user cannot reach {data_dir}: give its parent directories "
            "o+x, or set MLFLOW_BACKEND_URI to an existing database"
        )
    result = subprocess.run(
        [
            str(PG_BIN / "initdb"),
            f"--pgdata={data_dir}",
            f"--username={DB_ROLE}",
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        **owner,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise NextframeError(f"initdb failed in {data_dir}: {last}")


def _running_port(data_dir: Path) -> int | None:
    """The port of a postmaster already running on `data_dir` (from its postmaster.pid)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        os.kill(int(lines[0]), 0)
        return int(lines[3])
    except (OSError, ValueError, IndexError):
        return None


def wait_for_database(
    uri: str, password: str | None, process: subprocess.Popen | None, what: str
) -> None:
    """Connect until the database answers; a clear error if it never does."""
    import psycopg

    conninfo = uri.replace("postgresql+psycopg://", "postgresql://", 1)
    deadline = time.monotonic() + (60 if process else 0)
    while True:
        try:
            psycopg.connect(conninfo, password=password, connect_timeout=5).close()
            return
        except psycopg.OperationalError as exc:
            error = (str(exc).strip().splitlines() or ["no answer"])[0]
        if process is not None and process.poll() is not None:
            raise NextframeError(f"{what} exited with code {process.returncode}: {error}")
        if time.monotonic() > deadline:
            raise NextframeError(f"cannot connect to {what}: {error}")
        time.sleep(0.2)


@contextlib.contextmanager
def local_cluster(state_dir: Path) -> Iterator[Database]:
    """The project-local cluster in `state_dir/pg`, initialised and started as needed.

    A cluster this call started is stopped on exit; one already running is left running."""
    state_dir = state_dir.resolve()  # PostgreSQL's programs run from /
    data_dir, password_file = state_dir / "pg", state_dir / "pg-password"
    fresh = not (data_dir / "PG_VERSION").exists()
    if fresh:
        if data_dir.exists() and any(data_dir.iterdir()):
            raise NextframeError(f"{data_dir} is neither empty nor a PostgreSQL cluster")
        init_cluster(data_dir, password_file)
    elif not password_file.exists():
        raise NextframeError(
            f"{password_file} is missing, so nobody can log in to the cluster in {data_dir}: "
            f"delete {state_dir} to start afresh"
        )
    password = password_file.read_text().strip()
    port = _running_port(data_dir)
    state = "already running"
    with contextlib.ExitStack() as stack:
        process = None
        if port is None:
            _check_postgres_installed()
            port, state = free_port(), "initialised now" if fresh else "existing"
            log = stack.enter_context(open(state_dir / "postgres.log", "ab"))
            # SIGINT is PostgreSQL's fast shutdown: sessions end, data is flushed.
            process = stack.enter_context(
                process_group(
                    [
                        str(PG_BIN / "postgres"),
                        f"-D{data_dir}",
                        f"-p{port}",
                        "-clisten_addresses=127.0.0.1",
                        "-cunix_socket_directories=",
                    ],
                    stop_signal=signal.SIGINT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd="/",
                    **_as_cluster_owner(),
                )
            )
        uri = f"postgresql://{DB_ROLE}@127.0.0.1:{port}/postgres"
        wait_for_database(uri, password, process, f"PostgreSQL in {data_dir}")
        _create_database(uri, password)
        print(
            f"server: backend store: project-local PostgreSQL in {data_dir} ({state}), port {port}"
        )
        yield Database(f"postgresql://{DB_ROLE}@127.0.0.1:{port}/{DB_NAME}", password, process)


def _create_database(admin_uri: str, password: str) -> None:
    """MLflow's database and the tuning studies', where missing."""
    import psycopg

    with psycopg.connect(admin_uri, password=password, autocommit=True) as connection:
        for name in (DB_NAME, STUDIES_DB):
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                connection.execute(f"CREATE DATABASE {name}")


def masked(uri: str) -> str:
    """`uri` with its password, if any, replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)


def given_database(uri: str) -> Database:
    """Check that `MLFLOW_BACKEND_URI` names a PostgreSQL database that answers."""
    if not uri.startswith(("postgresql://", "postgresql+psycopg://")):
        raise NextframeError(f"MLFLOW_BACKEND_URI must be a postgresql:// URL, got {uri!r}")
    wait_for_database(uri, None, None, f"the database at {masked(uri)}")
    print(f"server: backend store: PostgreSQL at {masked(uri)} (from MLFLOW_BACKEND_URI)")
    return Database(uri, None, None)


@contextlib.contextmanager
def running_server(
    state_dir: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    backend_uri: str | None = None,
    workers: int = 2,
    log: Path | None = None,
) -> Iterator[Server]:
    """MLflow server on `backend_uri`, or on the local cluster in `state_dir`; artifacts are
    kept in `state_dir/artifacts` and served through the server. Its output goes to `log`
    if given, else to ours."""
    if not port_is_free(host, port):
        raise NextframeError(f"port {port} on {host} is in use: pick another (PORT=...)")
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        # MLflow's GenAI job runners (eight more processes) serve nothing this project logs.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        if backend_uri:
            database = given_database(backend_uri)
        else:
            database = stack.enter_context(local_cluster(state_dir))
            env["PGPASSWORD"] = database.password
        output = stack.enter_context(open(log, "ab")) if log else None
        artifacts = (state_dir / "artifacts").resolve()
        artifacts.mkdir(exist_ok=True)
        url = f"http://{host}:{port}"
        mlflow = stack.enter_context(
            process_group(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    f"--host={host}",
                    f"--port={port}",
                    f"--workers={workers}",
                    f"--backend-store-uri={database.uri}",
                    f"--artifacts-destination={artifacts.as_uri()}",
                ],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
            )
        )
        where = f"in {log}" if log else "above"
        wait_until_serving(f"{url}/health", mlflow, START_SECONDS, where)
        studies, secret = None, None
        if not backend_uri:  # the cluster is ours: it holds the studies' database too
            base = database.uri.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            studies, secret = f"{base}/{STUDIES_DB}", state_dir.resolve() / "pg-password"
        yield Server(url, masked(database.uri), mlflow, database.process, studies, secret)


def _positive_int(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise NextframeError(f"{name} must be a positive integer, got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback)")
    parser.add_argument("--port", default="5000")
    parser.add_argument("--workers", default="2", help="uvicorn worker processes")
    parser.add_argument(
        "--dir",
        default=".mlflow-server",
        type=Path,
        help="where the project-local cluster and the artifacts live",
    )
    args = parser.parse_args()
    port = _positive_int(args.port, "PORT")
    workers = _positive_int(args.workers, "WORKERS")
    backend_uri = os.environ.get("MLFLOW_BACKEND_URI") or None
    with running_server(args.dir, args.host, port, backend_uri, workers) as server:
        print(
            f"server: MLflow on {server.url}, artifacts proxied into {args.dir / 'artifacts'}; "
            f"clients: export MLFLOW_TRACKING_URI={server.url}  (Ctrl-C stops)",
            flush=True,
        )
        if server.studies_uri:
            print(
                f"server: tuning studies: nextframe tune --storage "
                f"{server.studies_uri.replace('@', ':PASSWORD@', 1)}  "
                f"(PASSWORD: the line in {server.password_file})",
                flush=True,
            )
        try:
            code = server.mlflow.wait()
        except KeyboardInterrupt:
            print("server: stopping", flush=True)
            return
    raise NextframeError(f"mlflow server exited with code {code}")


if __name__ == "__main__":
    cli.run(main)
