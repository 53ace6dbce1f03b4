"""`dvc plots show` and `dvc plots diff` pages draw their charts in chromium with no network."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from nextframe.io import write_text
from nextframe.ops.plots_page import page_template

from .helpers import REPO_ROOT

BIN = Path(sys.executable).parent
# What the train and evaluate stages write, three epochs and two horizon steps of it.
HISTORY_CSV = "epoch,loss,val_loss,lr\n1,0.21,0.19,0.003\n2,0.15,0.16,0.001\n3,0.12,0.14,0.0\n"
PER_STEP_CSV = (
    ",".join(
        ["step"]
        + [
            f"{who}_{metric}"
            for who in ("model", "zeros", "copy_last", "mean_context", "extrapolation")
            for metric in ("mse", "mae", "ssim", "psnr")
        ]
    )
    + "\n"
    + "\n".join(
        f"{step}," + ",".join(str(step * (i + 1) * 0.7) for i in range(20)) for step in (1, 2, 3)
    )
    + "\n"
)
# The video domain's power spectra at the first and last step (metrics/diagrams/spectra.csv).
SPECTRA_CSV = (
    "wavelength_px,"
    + ",".join(
        f"{who}_step_{step}"
        for step in (1, 10)
        for who in ("observed", "model", "copy_last", "extrapolation")
    )
    + "\n"
    + "".join(
        f"{64 / k:g}," + ",".join(f"{-3.0 * k - i:g}" for i in range(8)) + "\n" for k in (1, 2, 4)
    )
)
# The x axes of the charts a Moving MNIST run draws (the radar domain's: lead time, rank,
# forecast probability and wavelength in km).
VIDEO_X = {"epoch", "step", "wavelength_px"}

pytestmark = pytest.mark.integration


def dvc(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"dvc {args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def git(args: list[str], cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def template() -> str:
    return page_template()


@pytest.fixture
def repo(tmp_path, template) -> Path:
    """A git+DVC repo with this repo's `.dvc/config`, its dvc.yaml `plots:`, its committed
    metrics and an image, and the page template where the config points."""
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    pipeline = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    paths = {k: v for entry in pipeline["vars"] for k, v in entry["paths"].items()}
    plots = {"vars": pipeline["vars"], "plots": pipeline["plots"]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(plots, sort_keys=False))
    write_text(repo / paths["history"], HISTORY_CSV)
    write_text(repo / paths["per_step"], PER_STEP_CSV)
    write_text(repo / paths["diagrams"] / "spectra.csv", SPECTRA_CSV)
    (repo / paths["grid"]).parent.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "docs" / "grid.png", repo / paths["grid"])
    # Relative to .dvc/, as DVC resolves it.
    write_text(repo / ".dvc" / dvc(["config", "plots.html_template"], repo).strip(), template)
    git(["init", "-q"], repo)
    git(["add", "-A"], repo)
    git(["commit", "-qm", "plots"], repo)
    return repo


def chart_titles() -> list[str]:
    """Titles of the vega (not image) plots this repo's dvc.yaml declares for Moving MNIST
    (the radar domain's have no data here)."""
    plots = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["plots"]
    return [
        props["title"]
        for plot in plots
        if isinstance(plot, dict)
        for props in plot.values()
        if "title" in props and props.get("x") in VIDEO_X
    ]


def assert_charts_drawn(browser, page: Path, n_images: int) -> None:
    browser.page.goto(page.as_uri())
    titles = chart_titles()
    # vega-embed marks each container `.vega-embed`; vega draws a chart as `svg.marks`.
    try:
        browser.page.wait_for_function(
            "n => document.querySelectorAll('.vega-embed svg.marks').length >= n",
            arg=len(titles),
            timeout=30_000,
        )
    except PlaywrightTimeoutError:
        pytest.fail(f"charts not drawn; off-host: {browser.off_host}; errors: {browser.errors}")
    charts = browser.page.eval_on_selector_all(
        ".vega-embed svg.marks",
        """svgs => svgs.map(svg => ({
            text: svg.textContent,
            lines: [...svg.querySelectorAll('.mark-line path')]
                .filter(p => (p.getAttribute('d') || '').length > 20).length,
        }))""",
    )
    assert len(charts) >= len(titles)
    for title in titles:
        [chart] = [c for c in charts if title in c["text"]]
        assert chart["lines"] > 0, f"{title}: no line drawn"
    images = browser.page.eval_on_selector_all(
        "img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
    )
    assert images == [True] * n_images
    assert browser.off_host == []
    assert browser.errors == []
    # vega-embed warns when a spec's vega-lite major differs from the bundled one.
    assert [w for w in browser.warnings if "Vega-Lite" in w] == []


def test_plots_show_page_links_nothing_remote(repo):
    """Without a browser: the page names no script, style or image by an http(s) URL."""
    dvc(["plots", "show"], repo)
    html = (repo / "dvc_plots" / "index.html").read_text()
    assert "vegaEmbed" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


@pytest.mark.browser
def test_plots_show_draws_every_chart_offline(browser, repo):
    dvc(["plots", "show"], repo)
    assert_charts_drawn(browser, repo / "dvc_plots" / "index.html", n_images=1)


@pytest.mark.browser
def test_plots_diff_draws_both_revisions_offline(browser, repo):
    history = repo / "metrics" / "train_history.csv"
    history.write_text("".join(history.read_text().splitlines(keepends=True)[:-1]))  # 1 epoch less
    dvc(["plots", "diff", "HEAD"], repo)
    page = repo / "dvc_plots" / "index.html"
    assert_charts_drawn(browser, page, n_images=2)  # the grid at HEAD and in the workspace
    legends = browser.page.eval_on_selector_all(".vega-embed svg.marks", "s => s[0].textContent")
    assert "HEAD" in legends and "workspace" in legends


def test_setup_wrote_the_configured_template():
    """`make setup` writes the template where `.dvc/config` points, so a plain `dvc plots
    show` in this repo gets the offline page."""
    template = REPO_ROOT / ".dvc" / dvc(["config", "plots.html_template"], REPO_ROOT).strip()
    assert template.is_file(), f"{template} is missing: run `make setup`"
    text = template.read_text()
    assert "{plot_divs}" in text
    assert "{scripts}" not in text  # where DVC would put its CDN <script> tags
