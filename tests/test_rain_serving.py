"""What a served radar model accepts: rain rates in mm/h of any domain size with NaN outside
it, and one reason for anything else (a 400 from `make serve`)."""

from __future__ import annotations

import numpy as np
import pytest

from nextframe.domains.rain.domain import check_rain_request
from nextframe.domains.rain.domain import rain_answer as _rain_answer
from nextframe.errors import NextframeError
from nextframe.io import encode_npy
from nextframe.ops.serving import read_request


def test_rain_rates_of_any_domain_with_nan_are_taken():
    rain = np.full((1, 4, 50, 70), 0.5, np.float32)
    rain[0, :, :3] = np.nan
    clips, forms = read_request([encode_npy(rain[0])])
    checked = check_rain_request(clips, 12, patch_size=4)
    assert checked.shape == (1, 4, 50, 70) and forms == ["npy"]
    assert np.isnan(checked[0, :, :3]).all()
    with_channel = check_rain_request(rain[..., None], 12, patch_size=4)
    assert with_channel.shape == (1, 4, 50, 70)


@pytest.mark.parametrize(
    ("rain", "horizon", "message"),
    [
        (-np.ones((1, 4, 8, 8), np.float32), 3, "rain rates must be >= 0 mm/h"),
        (np.full((1, 4, 8, 8), np.inf, np.float32), 3, "finite or NaN"),
        (np.zeros((1, 1, 8, 8), np.float32), 3, "T >= 2 frames"),
        (np.zeros((1, 4, 2, 8), np.float32), 3, "at least 4x4 pixels"),
        (np.zeros((1, 4, 8, 8), np.uint8), 3, "as floats, got uint8"),
        (np.zeros((1, 4, 8, 8), np.float32), 0, "horizon must be between 1 and 100"),
    ],
)
def test_anything_else_is_one_reason(rain, horizon, message):
    with pytest.raises(NextframeError, match=message):
        check_rain_request(rain, horizon, patch_size=4)


def test_nested_lists_answer_null_where_there_is_no_data():
    future = np.array([[[1.5, np.nan]]], np.float32)
    assert _rain_answer(future, "lists") == [[[1.5, None]]]
