import pytest
import yaml

from nextframe.errors import NextframeError
from nextframe.params import flatten, load_params, parse_params
from nextframe.presets import merged as merge

from .helpers import REPO_ROOT, run_stage


def test_repo_params_are_valid():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.data.horizon == params.data.n_frames - params.data.n_context


def test_flatten_gives_dotted_string_keys(default_params):
    flat = flatten(parse_params(default_params))
    assert flat["epochs"] == str(default_params["epochs"])
    assert flat["model.filters"] == str(default_params["model"]["filters"])


def _error(raw) -> str:
    with pytest.raises(NextframeError) as info:
        parse_params(raw)
    return str(info.value)


BAD_EDITS = [
    (
        {"model": {"filters": [-3, 32]}},
        "params.yaml: model.filters[0] must be a positive integer, got -3",
    ),
    ({"epochs": "ten"}, "params.yaml: epochs must be an integer, got 'ten'"),
    ({"epochs": 2.5}, "params.yaml: epochs must be an integer, got 2.5"),
    ({"data": {"step_length": 2.0}}, "params.yaml: data.step_length must be <= 1, got 2.0"),
    ({"data": {"step_length": 0}}, "params.yaml: data.step_length must be > 0, got 0"),
    (
        {"model": {"normalization": "instance"}},
        "params.yaml: model.normalization must be one of 'none', 'batch', 'layer' or 'group', "
        "got 'instance'",
    ),
    ({"train": {"lr": "fast"}}, "params.yaml: train.lr must be a number, got 'fast'"),
    ({"train": {"lr": "1e-3x"}}, "params.yaml: train.lr must be a number, got '1e-3x'"),
    ({"epochs": "1e1"}, "params.yaml: epochs must be an integer, got '1e1'"),
    (
        {"data": {"source": "folder", "value_range": [5.0, 1.0]}},
        "params.yaml: data.value_range must be [low, high] with low < high, got [5.0, 1.0]",
    ),
    (
        {"data": {"value_range": [0.0]}},
        "params.yaml: data.value_range must have at least 2 item(s), got [0.0]",
    ),
    (
        {"data": {"channels": 3}},
        "params.yaml: data.channels must be 1 with source generated (one value per pixel), got 3",
    ),
    (
        {"data": {"val_fraction": 0.5, "test_fraction": 0.5}},
        "params.yaml: data.val_fraction + data.test_fraction must be < 1 (train needs clips), "
        "got 1",
    ),
    ({"train": {"lrr": 0.1}}, "params.yaml: unknown key train.lrr"),
    (
        {"model": {"patch_size": 3}},
        "params.yaml: model.patch_size must divide data.frame_size (64), got 3",
    ),
    (
        {"model": {"kernel_sizes": [3]}},
        "params.yaml: model.kernel_sizes must have one entry per layer in model.filters (2), got 1",
    ),
    (
        {"data": {"n_context": 20}},
        "params.yaml: data.n_context must be smaller than data.n_frames (20), got 20",
    ),
    (
        {"data": {"source": "download", "n_train": 9000, "n_val": 900, "n_test": 900}},
        "params.yaml: data.n_train + n_val + n_test must be <= 10000",
    ),
    (
        {"train": {"context_frames": 11}},
        "params.yaml: train.context_frames must be <= data.n_context (10), got 11",
    ),
    ({"render": {"n_sequences": 5000}}, "params.yaml: render.n_sequences must be <= 64, got 5000"),
    (
        {"evaluate": {"thresholds": []}},
        "params.yaml: evaluate.thresholds must have at least 1 item(s), got []",
    ),
    (
        {"evaluate": {"thresholds": [1.0, -5.0]}},
        "params.yaml: evaluate.thresholds must all be > 0, got [1.0, -5.0]",
    ),
    (
        {"evaluate": {"scales": [16.0, 4.0]}},
        "params.yaml: evaluate.scales must be sorted ascending without repeats, got [16.0, 4.0]",
    ),
    (
        {"data": {"source": "radar", "radar": {"crop": 4}}},
        "params.yaml: data.radar.crop must be >= 8, got 4",
    ),
    (
        {
            "data": {"source": "radar"},
            "model": {"normalization": "group", "norm_groups": 1, "patch_size": 3},
        },
        "params.yaml: model.patch_size must divide data.radar.crop (128), got 3",
    ),
    (
        {"data": {"radar": {"zerovalue_db": -5.0}}},
        "params.yaml: data.radar.zerovalue_db must be < 10 log10(data.radar.threshold_mmh) = -10",
    ),
    ({"train": {"loss": "balanced"}}, "params.yaml: train.loss balanced weighs pixels by their"),
    (
        {"data": {"radar": {"crop": 64, "region": 48}}},
        "params.yaml: data.radar.region must be >= data.radar.crop (64): training crops are cut "
        "from it, got 48",
    ),
    (
        {"train": {"sequences": "fresh", "augment": "flips"}},
        "params.yaml: train.augment flips transforms stored clips: fresh sequences are new",
    ),
    ({"train": {"augment": "turns"}}, "params.yaml: train.augment must be one of"),
    (
        {"train": {"sequences": "fresh", "reverse_time": True}},
        "params.yaml: train.reverse_time reverses stored clips: fresh sequences are new",
    ),
]


@pytest.mark.parametrize(("edit", "message"), BAD_EDITS)
def test_bad_value_is_named_in_one_line(default_params, edit, message):
    text = _error(merge(default_params, edit))
    assert "\n" not in text
    assert text.startswith(message) or message in text


def test_missing_key_is_named(default_params):
    del default_params["train"]["lr"]
    assert _error(default_params) == "params.yaml: train.lr is missing"


def test_a_moved_key_is_named_with_its_new_place(default_params):
    """Params files from before `head_bias_init` moved from `train` to `model`."""
    default_params["train"]["head_bias_init"] = -3.0
    del default_params["model"]["head_bias_init"]
    assert _error(default_params) == (
        "params.yaml: train.head_bias_init moved to model.head_bias_init: move it there"
    )


def test_missing_section_is_named(default_params):
    del default_params["render"]
    assert _error(default_params) == "params.yaml: render is missing"


@pytest.mark.parametrize("raw", [[1, 2], "text", None, 3])
def test_not_a_mapping(raw):
    assert "must be a YAML mapping" in _error(raw)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\nepochs: [1\n")
    with pytest.raises(NextframeError, match=r"params.yaml: not valid YAML at line \d"):
        load_params(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(NextframeError, match="not valid YAML"):
        load_params(path)


def test_what_dvc_exp_run_s_writes_for_a_float_is_read_as_the_number(default_params):
    """`dvc exp run -S train.lr=1e-3` writes `lr: 1e-3`, which YAML 1.1 reads as text."""
    written = yaml.safe_load("lr: 1e-3\nclipnorm: '2'\nstep: -.5E+1\n")
    assert written["lr"] == "1e-3"  # what PyYAML hands over
    default_params["train"] |= {"lr": written["lr"], "clipnorm": written["clipnorm"]}
    params = parse_params(default_params)
    assert params.train.lr == 1e-3 and params.train.clipnorm == 2.0


def test_stage_prints_one_line_and_exits_nonzero(tmp_path, default_params):
    bad = merge(default_params, {"model": {"filters": [-3, 32]}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    result = run_stage("train", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: model.filters[0] must be a positive integer, got -3"
    ]
    assert not (tmp_path / "models").exists()
