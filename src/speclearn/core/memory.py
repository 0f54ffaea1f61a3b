"""Keep memory flat while large arrays stream through in blocks (glibc's malloc only)."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

#: mallopt parameter numbers of M_TRIM_THRESHOLD and M_MMAP_THRESHOLD in glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: glibc's mmap threshold while the trim threshold is set: its own upper limit (32 MiB on 64-bit).
MMAP_THRESHOLD = 32 * 2**20


@functools.cache
def return_freed_memory(threshold: int = 65536) -> bool:
    """Make malloc hand freed heap memory back to the operating system once `threshold` bytes are free.

    Blocks decoded by Zarr's and Dask's worker threads leave glibc's per-thread arenas fragmented,
    so a process's memory creeps up with the number of blocks streamed (measured: +300 MiB over
    8,000 LIBS spectra). This is the setting Dask's nanny gives its workers
    (`MALLOC_TRIM_THRESHOLD_=65536`), applied in-process; it lasts for the process. Setting it also
    freezes glibc's mmap threshold, at 128 KiB if nothing has raised it yet: every larger numpy
    temporary is then a fresh mmap whose pages fault in on first touch (measured: the Poisson unmixing
    of a 32 x 64 x 2048 band with 244,000 page faults and 2.2x the CPU time), so it is set to
    `MMAP_THRESHOLD`. Returns False where the C library is not glibc (nothing is changed there).
    """
    name = ctypes.util.find_library("c")
    try:
        if not name:
            return False
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold)) and bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def read_rows(data: Any, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a numpy or dask array as float64 numpy (computes a dask band)."""
    band = data[start:stop]
    if not hasattr(band, "compute"):
        return np.asarray(band, dtype=float)
    return_freed_memory()
    return np.asarray(band.compute(), dtype=float)


def iter_blocks(data: Any, rows: int, halo: int = 0) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """(start, stop, offset, band) over the first axis of a numpy or dask array, `rows` at a time; band
    holds rows [start - offset, stop + halo) clipped to the array, so only one band is in memory."""
    n = data.shape[0]
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        low, high = max(start - halo, 0), min(stop + halo, n)
        yield start, stop, start - low, read_rows(data, low, high)
