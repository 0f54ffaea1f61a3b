"""Running speclearn's dask work on a dask.distributed cluster (`--scheduler ADDRESS|local:N`).

`scheduler(address)` is a context manager: without an address nothing changes (dask's local
threaded scheduler); `local:N` starts a LocalCluster of N single-threaded worker processes;
anything else is the address of a running scheduler (`tcp://host:8786`). While it is open every
dask computation (reading Zarr, preprocessing, writing) runs on that cluster. `unmix_lazy` turns a
fixed-spectra unmixing into a dask graph (one task per storage chunk of rows), so the Poisson fits
run on the workers, not in the client.

`map_spectra` and `predict_table` apply a fitted model chunk by chunk: a lazy (Zarr/HDF5) input
becomes a dask graph with one task per storage chunk of spectra (whole spectra per task), so the
result streams into Zarr (or into a table) without the input ever being held whole; numpy input is
applied in one call.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra


@contextlib.contextmanager
def scheduler(address: str | None) -> Iterator[Any]:
    """A dask.distributed Client for `address` ('local:N' or a scheduler address), None without one."""
    if not address:
        from speclearn.progress import dask_progress
        with dask_progress("computing"):
            yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--scheduler needs dask.distributed: pip install 'speclearn[distributed]'") from None
    cluster = None
    if address.startswith("local:"):
        try:
            workers = int(address.split(":", 1)[1])
        except ValueError:
            workers = 0
        if workers < 1:
            raise InputError(f"--scheduler local:N needs a positive number of workers, got {address!r}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        address = cluster
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as err:
        if cluster is not None:
            cluster.close()
        raise InputError(f"cannot connect to the dask scheduler {address!r} ({err})") from None
    try:
        yield client
    finally:
        if cluster is not None:
            client.shutdown()  # stops the workers and scheduler we started
        else:
            client.close()  # leaves somebody else's cluster running


def _fit_block(block: np.ndarray, components: np.ndarray, max_iter: int, sum_to_one: bool) -> np.ndarray:
    """Abundances (rows, x, K) of one band of rows with the spectra fixed (runs on a worker)."""
    from speclearn.unmix._base import fractions, kl_abundances
    band = np.asarray(block, dtype=float)
    bad = ~np.isfinite(band) | (band < 0)
    if bad.any():
        value = band[tuple(np.argwhere(bad)[0])]
        raise InputError(f"the cube holds a NaN, infinite or negative value ({value:g})")
    counts = kl_abundances(band, components, max_iter=max_iter)
    return fractions(counts) if sum_to_one else counts


def unmix_lazy(intensity: Any, components: np.ndarray, *, sum_to_one: bool = True, max_iter: int = 1000) -> Any:
    """Abundances (K, y, x) of a (y, x, channels) dask cube as a dask array: one task per chunk of rows
    (the storage chunking, with whole rows and all channels per task)."""
    import dask.array as da
    cube = intensity if isinstance(intensity, da.Array) else da.from_array(np.asarray(intensity))
    if cube.ndim != 3:
        raise InputError(f"the cube must be 3-D (y, x, channels), got shape {tuple(cube.shape)}")
    components = np.asarray(components, dtype=float)
    if cube.shape[-1] != components.shape[1]:
        raise InputError(f"the cube has {cube.shape[-1]} channels, the components {components.shape[1]}")
    cube = cube.rechunk({1: -1, 2: -1})
    k = components.shape[0]
    out = cube.map_blocks(_fit_block, components, max_iter, sum_to_one, dtype=float,
                          chunks=(cube.chunks[0], cube.chunks[1], (k,)))
    return da.moveaxis(out, -1, 0)


def _block(block: np.ndarray, like: tuple) -> Spectra:
    axis, kind, unit = like
    return Spectra(np.asarray(block), np.asarray(axis), axis_kind=kind, axis_unit=unit)


def _spectra_block(block: np.ndarray, fn: Callable[[Spectra], Spectra], like: tuple) -> np.ndarray:
    return np.asarray(fn(_block(block, like)).flat())


def _flat_chunks(spectra: Spectra):
    """The (n_spectra, channels) dask view, chunked along the spectra only (the storage chunks)."""
    return spectra.flat().rechunk({1: -1})


def map_spectra(spectra: Spectra, fn: Callable[[Spectra], Spectra]) -> Spectra:
    """fn(spectra) for numpy input; for lazy input a lazy result, fn applied to each chunk of spectra
    (its ids and metadata kept, its axis the one fn returns, found by applying fn to one spectrum)."""
    if not spectra.is_lazy:
        return fn(spectra)
    like = (spectra.axis, spectra.axis_kind, spectra.axis_unit)
    flat = _flat_chunks(spectra)
    probe = fn(_block(np.asarray(flat[:1].compute()), like))
    out = flat.map_blocks(_spectra_block, fn, like, dtype=probe.intensity.dtype, meta=np.empty((0, 0), probe.intensity.dtype),
                          chunks=(flat.chunks[0], (probe.n_channels,)))
    if spectra.is_image:
        out = out.reshape(*spectra.intensity.shape[:2], probe.n_channels)
    return Spectra(out, probe.axis, axis_kind=probe.axis_kind, axis_unit=probe.axis_unit, meta=spectra.meta,
                   source=spectra.source)


def _table_block(block: np.ndarray, fn: Callable, like: tuple, rows: slice) -> pd.DataFrame:
    return fn(_block(block, like), rows)


def predict_table(spectra: Spectra, fn: Callable[[Spectra, slice], pd.DataFrame]) -> pd.DataFrame:
    """fn(spectra, rows) -> one table row per spectrum, for lazy input computed per chunk of spectra
    (`rows` the chunk's positions, to slice per-spectrum side tables) and stacked; indexed by the ids."""
    if not spectra.is_lazy:
        return fn(spectra, slice(0, spectra.n_spectra))
    import dask
    flat = _flat_chunks(spectra)
    like = (spectra.axis, spectra.axis_kind, spectra.axis_unit)
    edges = np.cumsum((0, *flat.chunks[0]))
    parts = [dask.delayed(_table_block)(block, fn, like, slice(int(a), int(b)))
             for block, a, b in zip(flat.to_delayed().ravel(), edges[:-1], edges[1:])]
    table = pd.concat(dask.compute(*parts))
    table.index = spectra.meta.index
    return table
