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

    The setting Dask's nanny gives its workers (`MALLOC_TRIM_THRESHOLD_=65536`), applied in-process for
    the life of the process: memory stays flat while Zarr/Dask threads decode blocks. glibc's mmap
    threshold, which setting it freezes (at 128 KiB by default), is raised to `MMAP_THRESHOLD` so that
    large numpy temporaries are not fresh mmaps. Returns False where the C library is not glibc (nothing
    is changed there). Measurements: docs/notes/core_memory.md.
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
