"""`make demo` in headless chromium, on the tiny model the real stages trained: pick a test
sequence or upload a clip, press Predict, and the animations appear; a bad upload gets its
reason on the page, which goes on working; nothing is loaded from, or called, off this
machine."""

from __future__ import annotations

import io
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .browser import OffHostSink, free_port, process_group, proxy_env, wait_until_serving
from .helpers import REPO_ROOT, clean_env, make_recipe

pytestmark = pytest.mark.browser

EXAMPLE_CLIP = REPO_ROOT / "docs" / "example_clip.gif"


@dataclass(frozen=True)
class Demo:
    url: str
    sink: OffHostSink  # where the server's calls off this machine would have gone


@pytest.fixture(scope="module")
def demo(trained, tmp_path_factory):
    """`make demo`'s command in the trained workdir, in its own process group."""
    pytest.importorskip("gradio", reason="the demo extra is not installed (make test GPU=1)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("demo")
    log = workdir / "demo.log"
    with OffHostSink() as sink:
        env = clean_env(**proxy_env(sink), GRADIO_TEMP_DIR=str(workdir / "gradio"))
        command = ["bash", "-c", make_recipe("demo", f"PORT={port}")]
        with process_group(command, log, cwd=trained.path, env=env) as process:
            url = f"http://127.0.0.1:{port}/"
            wait_until_serving(url, process, log)
            yield Demo(url, sink)


def shown_gif(page, panel: str) -> tuple[str, int]:
    """The animation a panel shows once a prediction is done: its URL and frame count."""
    image = page.locator(f"#{panel} img")
    image.wait_for(timeout=120_000)
    src = image.get_attribute("src")
    with (
        urllib.request.urlopen(src, timeout=30) as response,
        Image.open(io.BytesIO(response.read())) as gif,
    ):
        return src, gif.n_frames


def predict(page) -> None:
    page.get_by_role("button", name="Predict").click()


def test_a_test_sequence_shows_context_prediction_and_truth(demo, trained, browser, tmp_path):
    page = browser.page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(demo.url)
    page.get_by_label("Test sequence").fill("2")
    predict(page)
    assert shown_gif(page, "prediction")[1] == trained.horizon
    assert shown_gif(page, "context")[1] == trained.n_context
    assert shown_gif(page, "truth")[1] == trained.horizon
    page.get_by_text("Test sequence 2:").wait_for()
    page.screenshot(path=tmp_path / "demo.png", full_page=True)
    assert browser.off_host == []
    assert browser.errors == []
    assert demo.sink.seen == []


def clear_upload(page) -> None:
    clear = page.locator("#upload").get_by_role("button", name="Clear")
    if clear.count():
        clear.click()


def upload(page, path: Path) -> None:
    clear_upload(page)
    page.locator("input[type=file]").set_input_files(path)
    page.get_by_text(path.name).first.wait_for()


def test_an_upload_is_predicted_and_a_bad_one_is_answered_on_the_page(
    demo, trained, browser, tmp_path
):
    """The upload's last frames are its context, as many as the model was trained on."""
    page = browser.page
    page.goto(demo.url)
    upload(page, EXAMPLE_CLIP)
    page.get_by_label("number input for Frames to predict").fill("6")
    predict(page)
    given = f"example_clip.gif: {trained.n_context} frames given, 6 predicted"
    page.get_by_text(given).wait_for(timeout=120_000)
    page.get_by_text(f"the last {trained.n_context} of the clip's 10 frames given").wait_for()
    assert shown_gif(page, "prediction")[1] == 6
    assert shown_gif(page, "context")[1] == trained.n_context
    assert page.locator("#truth img").count() == 0  # no truth for an upload

    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((10, 64, 64), np.nan, np.float32))
    upload(page, bad)
    predict(page)
    first_read = 10 - trained.n_context + 1  # only the clip's last frames are read
    message = f"bad.npy frame {first_read}: 4096 values are NaN or infinite"
    page.get_by_text(message).first.wait_for(timeout=60_000)

    clear_upload(page)  # back to the test sequences
    page.get_by_label("Test sequence").fill("1")
    predict(page)
    page.get_by_text("Test sequence 1:").wait_for(timeout=120_000)
    assert browser.off_host == []
    assert demo.sink.seen == []
