"""Weather radar, the whole way: the real `dvc repro` with `data.source: radar` on MeteoSwiss
composites of pysteps' example archive (tiny params), scored per lead time beside pysteps'
own nowcasts, then `nextframe predict` on the archive and `make serve` answering rain rates
with NaN outside the domain. Skipped, with the reason, where the shared archive is absent."""

from __future__ import annotations

import base64
import http.client
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nextframe.data.radar_store import open_archive_windows
from nextframe.domains.rain.scale import NO_DATA, RainScale
from nextframe.presets import merged

from ..browser import free_port, process_group, wait_until_serving
from ..helpers import (
    PATHS,
    RADAR_TINY,
    clean_env,
    make_recipe,
    nextframe_command,
    pipeline,
    radar_archive,
    recorded_run,
    run,
    store_client,
    tiny_repo,
)
from ..test_dvc_yaml import RADAR_ONLY_KEYS, RADAR_ONLY_READS, declared_params

pytestmark = pytest.mark.e2e

LAGRANGIAN_MODEL = {"predicts": "change"}
# Every nowcast scored beside the model: pysteps' three, and the means of both ensembles.
NOWCASTS = {"persistence", "extrapolation", "sprog", "model_ensemble_mean", "steps_mean"}


@dataclass(frozen=True)
class Reproduced:
    path: Path
    archive: Path
    reads: Path


@pytest.fixture(scope="module")
def radar(tmp_path_factory) -> Reproduced:
    """A tiny copy reproduced once on a 3-event MeteoSwiss archive (8 frames an event), also
    scored on FMI's first event (7 frames), which it never trains on, the params keys
    each stage read recorded (for tests/test_dvc_yaml.py's kind of check). The model learns
    in the frame of the moving rain, as the radar preset's does, on crops cut anew each epoch
    from stored regions, flipped and turned. Evaluation runs the model's own ensemble and
    pysteps' STEPS, of 2 members each, too."""
    root = tmp_path_factory.mktemp("radar")
    archive = radar_archive(root / "archive")
    radar_archive(archive, frames_per_event=7, network="fmi", events=1)
    radar = {
        "root": str(archive),
        "formulation": "lagrangian",
        "region": 40,  # training crops cut anew each epoch from stored 40 px regions
        "archives": [{"network": "fmi", "train": False}],
    }
    edits = {
        "data": {"radar": radar},
        "model": LAGRANGIAN_MODEL,
        "train": {"augment": "flips_and_turns"},
    }
    ensemble = {"evaluate": {"ensemble_members": 2}}
    repo = tiny_repo(root / "repo", {**merged(RADAR_TINY, edits), **ensemble})
    reads = root / "reads"
    reads.mkdir()
    run(["dvc", "repro"], repo, NEXTFRAME_PARAMS_READS=str(reads))
    return Reproduced(repo, archive, reads)


def test_eval_holds_csi_per_lead_for_the_model_and_pysteps_nowcasts(radar):
    report = json.loads((radar.path / PATHS["eval_metrics"]).read_text())
    assert set(report["baselines"]) == NOWCASTS
    for scores in (report["model"], *report["baselines"].values()):
        at_5 = scores["at_5min"]
        for key in ("csi_0.5", "csi_1", "pod_5", "far_10", "ets_1", "fss_1_16km", "fss_5_32km"):
            assert key in at_5
        assert 0.0 <= at_5["csi_1"] <= 1.0 and at_5["mae"] >= 0.0
    # Extrapolation of real rain beats persistence at 5 minutes, as it does in pysteps.
    assert (
        report["baselines"]["extrapolation"]["at_5min"]["csi_1"]
        > (report["baselines"]["persistence"]["at_5min"]["csi_1"])
    )
    assert report["timestep_minutes"] == 5.0
    assert report["test_events"] == ["2017-01-31T09:45:00"]  # the first archive's
    # Pooled over both networks' test windows, and each network's own.
    assert report["n_windows"] == 2 and set(report["archives"]) == {"mch", "fmi"}
    mch, fmi = report["archives"]["mch"], report["archives"]["fmi"]
    assert mch["test_events"] == ["2017-01-31T09:45:00"] and mch["n_windows"] == 1
    assert fmi["n_windows"] == 1 and fmi["test_events"][0].startswith("2016-09-28")
    for each in (mch, fmi):
        assert set(each["baselines"]) == NOWCASTS
        assert 0.0 <= each["model"]["at_5min"]["csi_1"] <= 1.0
    rows = (radar.path / PATHS["per_step"]).read_text().splitlines()
    header = rows[0].split(",")
    assert header[0] == "lead_minutes" and "sprog_csi_1" in header and "model_fss_1_4km" in header
    assert [float(r.split(",")[0]) for r in rows[1:]] == [5.0, 10.0, 15.0]


def test_eval_holds_both_ensembles_scores_per_lead_and_their_diagrams(radar):
    """The model's own members' and STEPS' CRPS, spread, their means' error and ROC areas in
    eval.json, at each reported lead and overall, per archive too; their means among the
    deterministic nowcasts; per lead in the CSV; their rank histograms and reliability
    diagrams as CSVs for `dvc plots`."""
    report = json.loads((radar.path / PATHS["eval_metrics"]).read_text())
    assert set(report["ensembles"]) == {"model_ensemble", "steps"}
    for name, ensemble in report["ensembles"].items():
        assert ensemble["n_members"] == 2, name
        for scores in (ensemble, ensemble["at_5min"]):
            assert scores["crps"] > 0 and scores["spread"] > 0 and scores["rmse_of_mean"] > 0
            assert 0 <= scores["roc_area_1"] <= 1
    assert set(report["archives"]["fmi"]["ensembles"]) == {"model_ensemble", "steps"}
    assert {"model_ensemble_mean", "steps_mean"} <= set(report["baselines"])
    header = (radar.path / PATHS["per_step"]).read_text().splitlines()[0].split(",")
    assert "model_csi_1" in header  # the model's one forecast, beside its ensemble
    for name in ("model_ensemble", "steps"):
        assert {f"{name}_crps", f"{name}_spread", f"{name}_rmse_of_mean"} <= set(header)
        assert f"{name}_mean_csi_1" in header
    diagrams = radar.path / PATHS["diagrams"]
    rankhist = (diagrams / "rankhist.csv").read_text().splitlines()
    assert rankhist[0] == "rank,model_ensemble_5min,steps_5min" and len(rankhist) == 1 + 3
    for column in (1, 2):  # frequencies, each to 6 significant digits in the CSV
        total = sum(float(line.split(",")[column]) for line in rankhist[1:])
        assert total == pytest.approx(1.0, abs=1e-5)
    reliability = (diagrams / "reliability.csv").read_text().splitlines()
    assert reliability[0].startswith("probability,perfect,model_ensemble_0.5mmh_5min")
    assert "steps_0.5mmh_5min" in reliability[0] and len(reliability) == 1 + 10
    trained = recorded_run(radar.path)  # MLflow: the scores, and the diagrams as figures
    for name in ("model_ensemble", "steps"):
        assert trained.data.metrics[f"eval.{name}.at_5min.crps"] == pytest.approx(
            report["ensembles"][name]["at_5min"]["crps"]
        )
    client = store_client(radar.path)
    figures = {a.path for a in client.list_artifacts(trained.info.run_id, "diagrams")}
    assert figures == {"diagrams/rankhist.png", "diagrams/reliability.png"}


def test_each_stage_reads_exactly_its_declared_radar_params(radar):
    """tests/test_dvc_yaml.py's check, for what only the radar source reads: on this run no
    stage reads an undeclared key, and every radar key a stage declares it reads."""
    templated = {"data.radar.root"}  # reaches fetch as its dep and argument
    all_read = set()
    for name in pipeline()["stages"]:
        read = set(json.loads((radar.reads / f"{name}.json").read_text()))
        declared = declared_params(name)
        assert not read - declared, f"stage {name} reads {sorted(read - declared)}: declare them"
        stale = (declared & (RADAR_ONLY_KEYS | RADAR_ONLY_READS.get(name, set()))) - read
        assert not stale, f"stage {name} never reads {sorted(stale)} on radar: drop them"
        all_read |= read
    assert RADAR_ONLY_KEYS - all_read - templated == set()


def test_test_windows_are_the_whole_domain_of_the_last_event(radar):
    test = np.load(radar.path / PATHS["test"])
    assert test.shape[2:] == (640, 710, 1)
    assert 0.25 < (test == NO_DATA).mean() < 0.35  # outside the radar's domain: masked
    train = np.load(radar.path / PATHS["train"])
    assert train.shape[2:] == (40, 40, 1)  # regions; validation keeps the model's crops
    assert np.load(radar.path / PATHS["val"]).shape[2:] == (32, 32, 1)
    test_frames = {frame.tobytes() for window in test for frame in window}
    info = json.loads((radar.path / PATHS["info"]).read_text())
    whole = open_archive_windows(radar.path / PATHS["archives"], info, test.shape[1])
    train_windows = [whole[i] for i in range(len(whole) - len(test))]
    # Each frame stored once: the store's frames, not its windows' (MeteoSwiss's 24 frames).
    assert np.load(radar.path / PATHS["archives"] / "0-mch.npy").shape == (24, 640, 710, 1)
    assert not any(frame.tobytes() in test_frames for w in train_windows for frame in w)


def test_the_mlflow_run_records_the_events_of_each_split(radar):
    run_ = recorded_run(radar.path)
    (dataset_input,) = run_.inputs.dataset_inputs
    profile = json.loads(dataset_input.dataset.profile)
    assert profile["events"]["test"] == ["2017-01-31T09:45:00"]
    assert len(profile["events"]["train"]) == 2
    assert "archives" not in profile  # FMI is only scored: no training data of it
    assert run_.data.metrics["eval.sprog.at_5min.csi_1"] > 0.5
    assert run_.data.params["data.source"] == "radar"


def test_render_draws_precipitation_maps_with_lead_times(radar):
    """The maps of the model and pysteps' nowcasts; with `evaluate.ensemble_members`, the
    model's members and its probabilities of >= 1 and >= 5 mm/h beside them."""
    grid = np.asarray(Image.open(radar.path / PATHS["grid"]).convert("RGB"))
    assert grid.shape[0] > 4 * 300  # truth, ConvLSTM, extrapolation, S-PROG rows
    grey = np.all(grid == 128, axis=-1)  # outside the domain
    assert grey.mean() > 0.05
    gifs = sorted(path.name for path in (radar.path / PATHS["gifs"]).glob("*.gif"))
    (stem,) = {name.split(".")[0].split("_m")[0].split("_p")[0] for name in gifs}
    assert gifs == [f"{stem}.gif", f"{stem}_members.gif", f"{stem}_probability.gif"]
    with Image.open(radar.path / PATHS["gifs"] / f"{stem}.gif") as image:
        assert image.n_frames == 7  # 4 observed, 3 forecast
    with Image.open(radar.path / PATHS["gifs"] / f"{stem}_members.gif") as image:
        assert image.n_frames == 7  # the truth and 2 members
    with Image.open(radar.path / PATHS["gifs"] / f"{stem}_probability.gif") as image:
        assert image.n_frames == 3  # one map a lead


@dataclass(frozen=True)
class Predicted:
    out: Path
    stdout: str


@pytest.fixture(scope="module")
def predicted(radar, tmp_path_factory) -> Predicted:
    """`nextframe predict` on the archive at 10:15, once for the tests that read its nowcast."""
    out = tmp_path_factory.mktemp("predicted") / "nowcast.npy"
    args = ["predict", str(radar.archive), "--start", "201701311015", "--out", str(out)]
    return Predicted(out, run(nextframe_command(*args), radar.path).stdout)


def test_predict_nowcasts_from_the_archive_in_mm_per_hour(radar, predicted):
    out = predicted.out
    nowcast = np.load(out)
    assert nowcast.shape == (3, 640, 710) and nowcast.dtype == np.float32
    assert 0.25 < np.isnan(nowcast).mean() < 0.35
    assert np.nanmin(nowcast) >= 0.0
    assert "mch nowcast +5 to +15 min every 5 min after 2017-01-31 10:15" in predicted.stdout
    assert out.with_suffix(".gif").stat().st_size > 0 and out.with_suffix(".mp4").is_file()
    bad = run(nextframe_command("predict", str(radar.archive), "--start", "201701312355"),
              radar.path, check=False)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no mch frame at" in bad.stderr


def test_predict_members_write_cf_netcdf_with_the_grid_leads_and_probabilities(radar, tmp_path):
    """`--members`: the members in the .npy (the same seed, the same members: see
    tests/test_model_members.py); a CF NetCDF that netCDF4 opens with the projection,
    x/y/lon/lat, lead times and the probabilities at evaluate.thresholds in [0, 1]; a GIF of
    P(>= 1) and P(>= 5 mm/h). A bad count is one line."""
    import netCDF4

    out = tmp_path / "ensemble.npy"
    args = ["predict", str(radar.archive), "--start", "201701311015", "--out", str(out)]
    result = run(nextframe_command(*args, "--members", "3", "--seed", "5"), radar.path)
    members = np.load(out)
    assert members.shape == (3, 3, 640, 710) and members.dtype == np.float32
    assert not np.allclose(members[0], members[1], equal_nan=True)
    assert "mch 3-member ensemble (seed 5) +5 to +15 min" in result.stdout
    assert out.with_name("ensemble_probability.gif").stat().st_size > 0
    with netCDF4.Dataset(out.with_suffix(".nc")) as dataset:
        assert dataset.variables["precip_intensity"].shape == (3, 3, 640, 710)
        assert dataset.variables["precip_intensity"].units == "mm h-1"
        np.testing.assert_allclose(
            np.ma.filled(dataset.variables["precip_intensity"][:], np.nan), members, atol=1e-6
        )
        assert list(dataset.variables["time"][:]) == [300, 600, 900]
        assert dataset.variables["time"].units == "seconds since 2017-01-31 10:15:00"
        assert dataset.variables["lon"].shape == (640, 710) and "somerc" in dataset.projection
        assert list(dataset.variables["threshold"][:]) == [0.5, 1.0, 5.0, 10.0]
        probability = np.ma.filled(dataset.variables["exceedance_probability"][:], np.nan)
        assert probability.shape == (4, 3, 640, 710)
        assert np.nanmin(probability) >= 0.0 and np.nanmax(probability) <= 1.0
        assert np.isnan(probability[:, :, np.isnan(members[0, 0])]).all()  # outside the domain
    bad = run(nextframe_command(*args, "--members", "1"), radar.path, check=False)
    assert bad.returncode == 1 and bad.stderr == "error: --members must be 2 to 48, got 1\n"


def _npy(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def test_make_serve_answers_rain_rates_with_nan_of_any_domain(radar, tmp_path):
    """Rain rates in, rain rates out; with `members`, each clip's ensemble, the members
    `nextframe predict --seed` grows from the same frames; an ensemble that would not fit the
    server's limit (here 1 MB) and negative rain are 400s."""
    from nextframe.domains.rain.ensemble import EnsembleSpec
    from nextframe.domains.rain.forecast import predict_rain
    from nextframe.domains.rain.perturbed import grown_around
    from nextframe.model import load_predictor

    port = free_port()
    model = "MODEL=models:/nextframe-convlstm@radar"
    command = make_recipe("serve", f"PORT={port}", f"STORE={radar.path}", model, "WORKERS=1")
    log = tmp_path / "serve.log"
    test = np.load(radar.path / PATHS["test"])[0, :4, 100:180, 200:296, 0]  # 80 x 96 km
    context = RainScale().decode_mmh(test)
    context[:, :5, :] = np.nan  # a strip outside the domain
    body = json.dumps({"inputs": [_npy(context)], "params": {"horizon": 2}})
    negative = json.dumps({"inputs": [_npy(-np.ones((4, 16, 16), np.float32))]})
    ensemble = {"horizon": 2, "members": 3, "seed": 7}
    members = json.dumps({"inputs": [_npy(context)], "params": ensemble})
    too_many = json.dumps({"inputs": [_npy(context)], "params": {**ensemble, "members": 48}})
    limit = clean_env(NEXTFRAME_SERVE_MAX_MB="1")
    with process_group(["bash", "-c", command], log, cwd=radar.path, env=limit) as server:
        wait_until_serving(f"http://127.0.0.1:{port}/ping", server, log)
        answers = []
        for request in (body, negative, members, too_many):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            connection.request(
                "POST", "/invocations", request, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            answers.append((response.status, json.loads(response.read())))
            connection.close()
    status, answer = answers[0]
    assert status == 200, answer
    (encoded,) = answer["predictions"]
    nowcast = np.load(io.BytesIO(base64.b64decode(encoded)), allow_pickle=False)
    assert nowcast.shape == (2, 80, 96) and nowcast.dtype == np.float32
    assert np.isnan(nowcast[:, :5]).all() and not np.isnan(nowcast[:, 5:]).any()
    status, answer = answers[1]
    assert status == 400 and "rain rates must be >= 0 mm/h" in answer["message"]
    status, answer = answers[2]
    assert status == 200, answer
    (encoded,) = answer["predictions"]
    served = np.load(io.BytesIO(base64.b64decode(encoded)), allow_pickle=False)
    assert served.shape == (3, 2, 80, 96) and not np.allclose(served[0], served[1], equal_nan=True)
    grow = grown_around(EnsembleSpec(3, 1.0, 5.0), [7])
    expected = predict_rain(
        load_predictor(radar.path / PATHS["model"]), context[None], 2, members=grow
    )
    np.testing.assert_allclose(served, expected[0], rtol=1e-5, atol=1e-5)
    status, answer = answers[3]
    assert status == 400 and "members: 48 members of 1 clip(s)" in answer["message"]
    assert "more than this server's limit of 1 MB (NEXTFRAME_SERVE_MAX_MB)" in answer["message"]


def test_the_model_records_its_formulation_and_every_use_nowcasts_alike(radar, predicted):
    """`nextframe predict` nowcasts what the domain's `predict_rain` (which evaluate, render,
    serve and the demo call) makes of the same frames: the formulation travels in the model."""
    from nextframe.data.radar import latest_context
    from nextframe.domains.rain.forecast import predict_rain
    from nextframe.model import load_predictor

    model = load_predictor(radar.path / PATHS["model"])
    assert model.frames.formulation.frame == "lagrangian"
    assert model.settings.predicts == "change"
    context, _, _ = latest_context(radar.archive, "mch", {}, 4, end=datetime(2017, 1, 31, 10, 15))
    expected = predict_rain(model, context[None], 3)[0]
    np.testing.assert_allclose(np.load(predicted.out), expected, rtol=1e-5, atol=1e-5)


def test_the_demo_shows_a_member_and_the_probabilities_of_the_models_ensemble(radar, tmp_path):
    """`make demo`'s page for a radar model: with members asked for, a member's maps and
    the P(>= 1 mm/h) and P(>= 5 mm/h) maps beside the nowcast; too many is one line."""
    from nextframe.data.windows import WindowFile
    from nextframe.errors import NextframeError
    from nextframe.model import load_predictor
    from nextframe.ops.demo import Predictor

    model = load_predictor(radar.path / PATHS["model"])
    manifest = json.loads((radar.path / PATHS["manifest"]).read_text())
    test = WindowFile(radar.path / PATHS["test"])
    predictor = Predictor(model, test, 4, tmp_path, manifest)
    shown = predictor.test_sequence(0, 3, members=2, seed=1)
    assert "a 2-member ensemble (seed 1)" in shown.caption
    with Image.open(shown.member_gif) as member, Image.open(shown.probability_gif) as maps:
        assert member.n_frames == 3 and maps.n_frames == 3
        assert maps.size[0] > member.size[0]  # two maps abreast
    assert predictor.test_sequence(0, 3).member_gif is None
    with pytest.raises(NextframeError, match="members must be 0 \\(none\\) or 2 to 12, got 13"):
        predictor.test_sequence(0, 3, members=13)
    pytest.importorskip("gradio", reason="the demo extra is not installed (make test installs it)")
    from nextframe.ops.demo import build_page

    page = build_page(predictor, 3)  # its Predict button: the members slider in, 2 maps out
    (click,) = [each for each in page.fns.values() if len(each.inputs) == 4]
    assert [output.elem_id for output in click.outputs if output.elem_id] == [
        "context", "prediction", "truth", "member", "probability"
    ]  # fmt: skip
    answer = click.fn(0, None, 3, 2)
    assert len(answer) == 6 and answer[4].endswith(".gif") and answer[5].endswith(".gif")
