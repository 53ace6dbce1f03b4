"""`make ui`: it prints the address of the nextframe runs, which opens the experiment on its
table of training runs; the page loads nothing off this machine, and its server calls out to
nothing either (MLflow's telemetry would, at start and when the page loads)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .browser import OffHostSink, free_port, process_group, proxy_env, wait_until_serving
from .helpers import REPO_ROOT, store_client

# MLflow turns its telemetry off by itself under pytest and on CI: without these the server
# behaves as `make ui` does on a user's machine. MLFLOW_* and DO_NOT_TRACK go too, so that
# what is tested is the Makefile's own setting.
SELF_DISABLING = {"PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "DO_NOT_TRACK"}


def group_commands(group: int) -> list[str]:
    """The command lines of the processes in process group `group`."""
    commands = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                commands.append(
                    (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return commands


@pytest.mark.browser
def test_make_ui_opens_the_runs_table_and_calls_nothing_off_host(trained, tmp_path, browser):
    """The experiment is tagged as model training (`mlflow.experimentKind`), and the printed
    address opens it on its runs, not on MLflow 3's GenAI overview of traces."""
    client = store_client(trained.path)
    run = client.get_run(trained.run_id)
    tags = client.get_experiment(run.info.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SELF_DISABLING and not k.startswith("MLFLOW_")
    }
    # `-o setup`: the venv is what this test runs in; the test installs nothing.
    args = ["make", "--no-print-directory", "-o", "setup", "ui", f"PORT={port}"]
    log = tmp_path / "ui.log"
    with OffHostSink() as sink:
        env |= proxy_env(sink)  # the server's HTTP(S) calls off this machine land here
        command = [*args, f"UI_STORE={trained.path}"]
        with process_group(command, log, cwd=REPO_ROOT, env=env) as ui:
            wait_until_serving(f"http://127.0.0.1:{port}/health", ui, log)
            (address,) = re.findall(r"ui: the nextframe runs: (\S+)", log.read_text())
            assert address.startswith(f"http://127.0.0.1:{port}/#/experiments/")
            browser.page.goto(address)
            browser.page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=60_000)
            assert browser.page.get_by_text("Token Usage").count() == 0  # no GenAI overview
            browser.page.wait_for_timeout(3_000)  # late loads: lazy chunks, telemetry worker
            commands = group_commands(ui.pid)
    assert any("mlflow ui" in command for command in commands), commands
    # MLflow's GenAI job runners (huey consumers) would be eight more processes
    assert not [command for command in commands if "huey" in command or "jobs" in command]
    assert any("/static-files/static/js/" in url for url in browser.requests)
    assert browser.off_host == []
    assert sink.seen == []
