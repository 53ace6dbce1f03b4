"""Atomic writes and safe loads: no reader ever sees a half-written file."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nextframe.errors import NextframeError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Same suffixes as the target: some writers (Keras, imageio) pick the format from them,
    # and Keras wants all of `.weights.h5`.
    suffixes = "".join(final.suffixes)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name.removesuffix(suffixes)}.", suffix=f".tmp{suffixes}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should read like any file
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(
    path: str | os.PathLike[str], rows: list[dict[str, float]], format_value: Callable[[float], str]
) -> None:
    """Rows of numbers with the same keys as a CSV with a header line (for `dvc plots`)."""
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(format_value(r[k]) for k in header) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)


class NpyAppender:
    """A uint8 `.npy` of rows shaped `row_shape`, written a chunk at a time when their number
    is not known in advance (clips decoded one by one). Its header is written for the largest
    count that fits and rewritten, padded to the same length, once the count is known, so the
    file is what `np.save` writes for the whole array. Use through `npy_appender`."""

    # Room for any row count below 10**15 in the header's shape.
    _PLACEHOLDER_ROWS = 10**15 - 1

    def __init__(self, file: BinaryIO, row_shape: tuple[int, ...], n_rows: int | None = None):
        self.file = file
        self.row_shape = tuple(int(n) for n in row_shape)
        self.expected_rows = None if n_rows is None else int(n_rows)
        self.n_rows = 0
        self._digest = hashlib.sha256()
        header = self._header(self._PLACEHOLDER_ROWS if n_rows is None else self.expected_rows)
        self._header_bytes = len(header)
        file.write(header)

    def _header(self, n_rows: int) -> bytes:
        buffer = io.BytesIO()
        header = {"descr": "|u1", "fortran_order": False, "shape": (n_rows, *self.row_shape)}
        np.lib.format.write_array_header_1_0(buffer, header)
        return buffer.getvalue()

    def append(self, rows_uint8: np.ndarray) -> None:
        if rows_uint8.dtype != np.uint8 or rows_uint8.shape[1:] != self.row_shape:
            raise ValueError(
                f"rows {rows_uint8.dtype} {rows_uint8.shape} do not fit {self.row_shape} uint8"
            )
        data = np.ascontiguousarray(rows_uint8)
        self._digest.update(data)
        self.file.write(data)
        self.n_rows += len(data)

    @property
    def digest(self) -> str:
        """The sha256 of the rows so far (as `sha256_of_array` gives it)."""
        return self._digest.hexdigest()

    def close(self) -> None:
        """Write the final header (or check the rows fill the one written)."""
        if self.expected_rows is not None:
            if self.n_rows != self.expected_rows:
                raise ValueError(
                    f"chunks hold {self.n_rows} rows, the header says {self.expected_rows}"
                )
            return
        header = self._header(self.n_rows)
        # Same length: pad the dict with spaces before the newline that ends the header.
        padded = header[:-1] + b" " * (self._header_bytes - len(header)) + b"\n"
        self.file.seek(0)
        self.file.write(padded)


@contextlib.contextmanager
def npy_appender(
    path: str | os.PathLike[str], row_shape: tuple[int, ...], n_rows: int | None = None
) -> Iterator[NpyAppender]:
    """An `NpyAppender` into `path` (for `n_rows` rows, if known: then the file's bytes are
    `np.save`'s), which appears (atomically) only if the block succeeds."""
    with atomic_path(path) as tmp, tmp.open("wb") as file:
        appender = NpyAppender(file, row_shape, n_rows)
        yield appender
        appender.close()


def write_npy_in_chunks(
    path: str | Path, shape: tuple[int, ...], chunks: Iterable[np.ndarray]
) -> str:
    """Write uint8 `chunks`, consecutive rows of an array of `shape`, as one .npy atomically,
    with one chunk in memory at a time; the digest of the rows (`sha256_of_array`)."""
    with npy_appender(path, tuple(shape[1:]), shape[0]) as appender:
        for chunk in chunks:
            appender.append(chunk)
    return appender.digest


def read_into(file: BinaryIO, offset: int, out: np.ndarray, source: str | os.PathLike[str]) -> None:
    """Fill `out` with the bytes at `offset` of an open file: a positioned read, not a memory
    map, whose pages would stay resident (see `nextframe.data.splits.read_sequences`)."""
    file.seek(offset)
    if file.readinto(out) != out.nbytes:
        raise NextframeError(f"{source}: file shrank while it was read")


def load_npy(path: str | os.PathLike[str], mmap: bool = True) -> np.ndarray:
    """Load an `.npy` without pickle; memory-mapped by default so uint8 data stays uint8 on disk."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as exc:
        raise NextframeError(f"{path}: file not found") from exc
    except (ValueError, OSError, EOFError) as exc:
        raise NextframeError(f"{path}: not a readable .npy array ({exc})") from exc


def require_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """`path`, or one line saying it is not there (checked before a slow import)."""
    if not Path(path).is_file():
        raise NextframeError(f"{path}: {what} not found")
    return Path(path)


def load_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file's content; a missing or corrupt file is one line naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NextframeError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NextframeError(f"{path}: not readable JSON ({exc})") from None


def remove_outputs(*paths: str | os.PathLike[str]) -> None:
    """Delete stale outputs so a failed stage leaves nothing that looks finished."""
    for path in paths:
        p = Path(path)
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def encode_npy(frames: np.ndarray) -> str:
    """An array as the base64 text of its `.npy` file: an array inside JSON, compactly."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(frames), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_npy(text: str) -> np.ndarray:
    """`encode_npy`'s array back; never unpickles."""
    try:
        return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (binascii.Error, ValueError, EOFError, OSError) as exc:
        raise NextframeError(f"text must be a base64 .npy file ({exc})") from None
