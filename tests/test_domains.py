"""Domains are found by name (`nextframe.domains`): a third one is one module and one line in
the table, and the evaluate stage's calls reach it as they reach video and rain."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from nextframe.domains import DOMAINS, PARTS, Domain, get_method, get_part, register
from nextframe.errors import NextframeError


class Brightness(Domain):
    """A tiny domain: frames are judged by their mean brightness alone."""

    name = "brightness"
    registry_alias = "brightest"

    def open_windows(self, path, data):
        return np.load(path)


def evaluate(model, windows, params, manifest, test_archives=None):
    """The model's and the all-zero baseline's error of the mean brightness, per step."""
    n_context = params["n_context"]
    context, truth = windows[:, :n_context], windows[:, n_context:]
    predicted = model(context, truth.shape[1])
    model_error = np.abs(predicted.mean(axis=(2, 3)) - truth.mean(axis=(2, 3))).mean(axis=0)
    zeros_error = truth.mean(axis=(2, 3)).mean(axis=0)
    rows = [
        {"step": step + 1, "model_mse": float(m), "zeros_mse": float(z)}
        for step, (m, z) in enumerate(zip(model_error, zeros_error, strict=True))
    ]
    report = {
        "model": {"mse": float(model_error.mean())},
        "baselines": {"zeros": {"mse": float(zeros_error.mean())}},
        "n_windows": len(windows),
        "n_context": n_context,
        "horizon": truth.shape[1],
    }
    return report, rows


def summary(report):
    return f"brightness error {report['model']['mse']:.3f}"


@pytest.fixture
def brightness(monkeypatch):
    module = types.ModuleType("tiny_brightness_domain")
    module.DOMAIN = Brightness()
    module.evaluate, module.summary = evaluate, summary
    monkeypatch.setitem(sys.modules, module.__name__, module)
    register("brightness", module.__name__)
    yield module
    DOMAINS.pop("brightness")


def test_a_third_domain_is_one_module_and_one_line_and_evaluates(brightness, tmp_path):
    rng = np.random.default_rng(0)
    windows = rng.random((4, 5, 8, 8)).astype(np.float32)
    np.save(tmp_path / "test.npy", windows)

    # what stages/evaluate.py does, by the domain's name
    domain = get_method("brightness")
    test_windows = domain.open_windows(tmp_path / "test.npy", None)
    evaluation = get_part("brightness", "evaluation")
    copy_last = lambda context, horizon: np.repeat(context[:, -1:], horizon, axis=1)  # noqa: E731
    report, rows = evaluation.evaluate(copy_last, test_windows, {"n_context": 3}, {})

    assert [row["step"] for row in rows] == [1, 2]
    assert {"model", "baselines", "n_windows", "n_context", "horizon"} <= set(report)
    assert domain.registry_score(report) == report["model"]["mse"]
    assert domain.registry_alias == "brightest"
    assert evaluation.summary(report).startswith("brightness error ")
    assert all(get_part("brightness", part) is brightness for part in PARTS)


def test_video_and_rain_have_every_part_and_one_report_shape():
    for name in ("video", "rain"):
        assert isinstance(get_method(name), Domain)
        for part in PARTS:
            assert get_part(name, part).__name__ == f"nextframe.domains.{name}.{part}"
    assert get_method("video").registry_alias == "champion"
    assert get_method("rain").registry_alias == "radar"


def test_an_unknown_domain_or_part_is_one_line():
    with pytest.raises(NextframeError, match="unknown domain 'sound' \\(known: rain, video\\)"):
        get_method("sound")
    with pytest.raises(NextframeError, match="unknown part 'mixer'"):
        get_part("video", "mixer")
