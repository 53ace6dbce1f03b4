import shutil

import pytest
import yaml

from nextframe.errors import NextframeError
from nextframe.params import load_params
from nextframe.presets import apply_preset, load_preset, merged

from .helpers import REPO_ROOT

KERAS_IO = REPO_ROOT / "presets" / "keras_io.yaml"


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(REPO_ROOT / "params.yaml", path)
    return path


def test_keras_io_preset_rewrites_only_its_keys_and_keeps_comments(params_file):
    before = params_file.read_text()
    changed = apply_preset(KERAS_IO, params_file)
    after = params_file.read_text()
    params = load_params(params_file)
    assert params.model.filters == [64, 64, 64] and params.model.patch_size == 1
    assert params.train.feedback == "teacher_forcing" and params.epochs == 20
    assert "model.filters" in changed and "data.n_test" not in changed  # same value
    assert "filters: [64, 64, 64]" in after  # lists stay on one line
    kept = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert all(line in after for line in kept)
    nulls = [line for line in before.splitlines() if ": null" in line]  # none set by the preset
    assert nulls and all(line in after for line in nulls)  # `null`, not an empty value
    expected = merged(yaml.safe_load(before), load_preset(KERAS_IO))
    assert yaml.safe_load(after) == expected


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ("model: {filterz: [3]}", "preset: unknown key model.filterz"),
        ("model: {filters: [0]}", "model.filters[0] must be a positive integer, got 0"),
        ("- a list", "must be a YAML mapping"),
    ],
)
def test_bad_preset_is_one_line_and_leaves_params_untouched(tmp_path, params_file, preset, message):
    before = params_file.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(preset)
    with pytest.raises(NextframeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_preset(bad, params_file)
    assert params_file.read_text() == before


def test_missing_preset_is_named(tmp_path, params_file):
    with pytest.raises(NextframeError, match="no such preset"):
        apply_preset(tmp_path / "nope.yaml", params_file)


@pytest.mark.parametrize("content", [None, "", "- a list"])
def test_a_params_file_that_cannot_take_a_preset_is_one_line(tmp_path, content):
    params = tmp_path / "params.yaml"
    if content is not None:
        params.write_text(content)
    with pytest.raises(NextframeError, match=r"params.yaml: (cannot read|must be a YAML mapping)"):
        apply_preset(KERAS_IO, params)


def test_gpu_preset_is_valid_and_sized_for_a_gpu(params_file):
    apply_preset(REPO_ROOT / "presets" / "gpu.yaml", params_file)
    params = load_params(params_file)
    assert params.train.precision == "mixed_bfloat16" and params.train.sequences == "fresh"
    assert params.model.filters == [128, 128, 128, 128]
