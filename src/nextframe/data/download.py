"""Fetch the real Moving MNIST file: a flaky network resumes, a changed file fails loudly."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nextframe.errors import NextframeError
from nextframe.io import read_into, write_npy_in_chunks

log = logging.getLogger(__name__)

FRAME_SHAPE = (64, 64)
# ~8 MB of uint8 per chunk at 20 frames: conversion memory stays flat however big the file is.
SEQUENCES_PER_CHUNK = 100


class _TransientError(Exception):
    """The network, not the request, went wrong: worth another attempt from where we stopped."""


def md5sum(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks so an 800 MB file never sits in memory."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None,
    timeout: float = 30.0,
    retries: int = 3,
    chunk_bytes: int = 1 << 20,
    progress: bool = True,
    backoff_seconds: float = 0.5,
    url_key: str = "data.url",
) -> Path:
    """Download `url` to `dest`, resuming a partial file; `dest` appears only once its md5 checks.

    An existing `dest` is kept without a request if it matches `md5` (or if `md5` is None).

    `retries` is the number of attempts for transient failures (network errors, timeouts, 5xx);
    attempt k waits `backoff_seconds * k` first. Every failure raises a one-line NextframeError
    naming the param to check: `url_key`, and its md5 beside it (`data.md5` for `data.url`).
    """
    md5_key = url_key.removesuffix("url") + "md5"
    dest = Path(dest)
    expected_md5 = md5.lower() if md5 is not None else None
    if dest.exists():
        if expected_md5 is None or md5sum(dest, chunk_bytes) == expected_md5:
            log.info("%s already present, skipping download", dest)
            return dest
        log.warning("%s does not match md5 %s; downloading it again", dest, expected_md5)
        dest.unlink()

    part = dest.with_name(dest.name + ".part")
    attempts = max(retries, 1)
    for attempt in range(1, attempts + 1):
        try:
            _fetch_into(
                url, part, timeout=timeout, chunk_bytes=chunk_bytes, progress=progress, key=url_key
            )
            break
        except _TransientError as exc:
            if attempt == attempts:
                raise NextframeError(
                    f"download {url} failed after {attempts} attempt(s): {exc} "
                    f"(check {url_key} or your network)"
                ) from exc
            log.warning("download %s: %s; retrying (%d/%d)", url, exc, attempt + 1, attempts)
            time.sleep(backoff_seconds * attempt)

    if expected_md5 is not None:
        actual_md5 = md5sum(part, chunk_bytes)
        if actual_md5 != expected_md5:
            part.unlink(missing_ok=True)
            raise NextframeError(
                f"{url}: md5 mismatch, expected {expected_md5}, got {actual_md5} "
                f"(the file changed or {md5_key} is wrong)"
            )
    os.replace(part, dest)
    return dest


def _fetch_into(
    url: str, part: Path, *, timeout: float, chunk_bytes: int, progress: bool, key: str
) -> None:
    """One attempt: append to `part` after a 206, start it over after a 200."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, part, timeout, key)
    if response is None:
        return

    with response:
        if response.status == 206:
            first_byte, total_bytes = _parse_content_range(response.headers.get("Content-Range"))
            if first_byte != offset:
                part.unlink()
                raise _TransientError(f"server resumed at byte {first_byte}, not {offset}")
            mode = "ab"
        else:
            # A 200 (or a file:// URL) carries the whole body: a Range we sent was ignored.
            if offset:
                log.info("%s ignored the resume request; starting over from byte 0", url)
            offset = 0
            length = response.headers.get("Content-Length")
            total_bytes = int(length) if length and length.isdigit() else None
            mode = "wb"

        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            with (
                part.open(mode) as part_file,
                tqdm(
                    total=total_bytes,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    desc=part.name.removesuffix(".part"),
                    disable=not progress,
                ) as bar,
            ):
                while chunk := _read_chunk(response, chunk_bytes, timeout):
                    part_file.write(chunk)
                    bar.update(len(chunk))
        except OSError as exc:
            raise NextframeError(
                f"{part}: cannot write ({exc.strerror or exc}) "
                "(check free disk space and permissions)"
            ) from exc

    # http.client returns b"" instead of raising when a connection closes before Content-Length.
    written_bytes = part.stat().st_size
    if total_bytes is not None and written_bytes < total_bytes:
        raise _TransientError(f"connection closed after {written_bytes} of {total_bytes} bytes")


def _open(
    url: str, offset: int, part: Path, timeout: float, key: str
) -> http.client.HTTPResponse | None:
    """Request the bytes from `offset` on, sorting failures into retryable and final.

    Returns None when the server says `part` already holds the whole file.
    """
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "nextframe"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _, total_bytes = _parse_content_range(exc.headers.get("Content-Range"))
            if total_bytes == offset:
                return None
            part.unlink()
            raise _TransientError(f"server refused to resume at byte {offset}") from exc
        if exc.code >= 500:
            raise _TransientError(f"HTTP {exc.code} {exc.reason}") from exc
        raise NextframeError(f"{url}: HTTP {exc.code} {exc.reason} (check {key})") from exc
    except urllib.error.URLError as exc:
        # Socket errors are worth retrying; a bad scheme or a missing local file is not.
        if isinstance(exc.reason, OSError) and not isinstance(exc.reason, FileNotFoundError):
            raise _TransientError(_describe(exc, timeout)) from exc
        raise NextframeError(f"{url}: {_describe(exc, timeout)} (check {key})") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise _TransientError(_describe(exc, timeout)) from exc
    except ValueError as exc:
        raise NextframeError(f"{url}: not a valid URL ({exc}) (check {key})") from exc


def _read_chunk(response: http.client.HTTPResponse, chunk_bytes: int, timeout: float) -> bytes:
    try:
        return response.read(chunk_bytes)
    except (OSError, http.client.HTTPException) as exc:
        raise _TransientError(_describe(exc, timeout)) from exc


def _parse_content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from `bytes 100-199/200` or `bytes */200`; None where unknown."""
    if not header or not header.startswith("bytes "):
        return None, None
    span, _, total = header.removeprefix("bytes ").partition("/")
    first = span.partition("-")[0]
    return (
        int(first) if first.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


def _describe(exc: BaseException, timeout: float) -> str:
    """A few words on what went wrong on the wire, on one line."""
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, http.client.IncompleteRead):
        return "connection closed mid-transfer"
    text = str(exc.reason if isinstance(exc, urllib.error.URLError) else exc)
    return " ".join(text.split()) or type(exc).__name__


def load_idx_images(path: Path) -> np.ndarray:
    """MNIST's image file (gzipped IDX: magic 2051, count, rows, cols, then uint8 pixels) as
    (count, rows, cols) uint8; anything else is refused with one line."""
    try:
        with gzip.open(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError) as exc:
        raise NextframeError(f"{path}: not a readable gzip file ({exc})") from exc
    if len(raw) < 16:
        raise NextframeError(f"{path}: too short for an IDX image file ({len(raw)} bytes)")
    magic, count, rows, cols = struct.unpack(">4I", raw[:16])
    if magic != 2051:
        raise NextframeError(f"{path}: not an IDX image file (magic {magic}, expected 2051)")
    if len(raw) != 16 + count * rows * cols:
        raise NextframeError(
            f"{path}: holds {len(raw) - 16} pixel bytes, its header says {count}x{rows}x{cols}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols).copy()


def open_real_layout(src: Path, n_frames: int) -> tuple[int, int]:
    """Check the time-major real file at `src`: (number of sequences, data offset in bytes)."""
    expected = f"a uint8 .npy of shape (>= {n_frames} frames, N, 64, 64)"
    try:
        frames_time_major = np.load(src, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise NextframeError(f"{src}: file not found (run the download first)") from exc
    except (ValueError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split())
        raise NextframeError(
            f"{src}: expected {expected}, found an unreadable file ({reason}); "
            "delete it and download again"
        ) from exc
    if not isinstance(frames_time_major, np.ndarray):
        frames_time_major.close()
        raise NextframeError(
            f"{src}: expected {expected}, found an .npz archive "
            "(is this the real Moving MNIST file?)"
        )
    found_shape = frames_time_major.shape
    if (
        frames_time_major.dtype != np.uint8
        or not frames_time_major.flags.c_contiguous
        or frames_time_major.ndim != 4
        or found_shape[2:] != FRAME_SHAPE
        or found_shape[0] < n_frames
    ):
        raise NextframeError(
            f"{src}: expected {expected}, found {frames_time_major.dtype} of shape {found_shape} "
            "(is this the real Moving MNIST file?)"
        )
    return found_shape[1], frames_time_major.offset


def real_layout_chunks(src: Path, n_frames: int, n_sequences: int) -> Iterator[np.ndarray]:
    """The first `n_sequences` of the real file as (chunk, n_frames, 64, 64, 1) uint8 chunks,
    sequence-major, one chunk in memory at a time."""
    n_stored, data_offset = open_real_layout(src, n_frames)
    if n_sequences > n_stored:
        raise NextframeError(f"{src}: holds {n_stored} sequences, {n_sequences} are needed")
    frame_bytes = FRAME_SHAPE[0] * FRAME_SHAPE[1]
    # Plain reads, not the memory map: mapped pages stay resident (~1.6 GB at full size).
    with Path(src).open("rb") as file:
        for start in range(0, n_sequences, SEQUENCES_PER_CHUNK):
            stop = min(start + SEQUENCES_PER_CHUNK, n_sequences)
            frames = np.empty((n_frames, stop - start, *FRAME_SHAPE), dtype=np.uint8)
            for t in range(n_frames):
                offset = data_offset + (t * n_stored + start) * frame_bytes
                read_into(file, offset, frames[t], src)
            yield np.ascontiguousarray(frames.swapaxes(0, 1))[..., None]


def convert_real_layout(src: Path, dest: Path, n_frames: int) -> tuple[int, ...]:
    """Rewrite the time-major real file as windows (N, n_frames, 64, 64, 1) uint8, chunk by
    chunk."""
    n_sequences, _ = open_real_layout(src, n_frames)
    out_shape = (n_sequences, n_frames, *FRAME_SHAPE, 1)
    write_npy_in_chunks(dest, out_shape, real_layout_chunks(src, n_frames, n_sequences))
    return out_shape
