"""Running speclearn's dask work on a dask.distributed cluster (`--scheduler ADDRESS|local:N`).

`scheduler(address)` is a context manager: without an address nothing changes (dask's local
threaded scheduler); `local:N` starts a LocalCluster of N single-threaded worker processes;
anything else is the address of a running scheduler (`tcp://host:8786`). While it is open every
dask computation (reading Zarr, preprocessing, writing) runs on that cluster. `unmix_lazy` turns a
fixed-spectra unmixing into a dask graph (one task per storage chunk of rows), so the Poisson fits
run on the workers, not in the client.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from speclearn.core.errors import InputError


@contextlib.contextmanager
def scheduler(address: str | None) -> Iterator[Any]:
    """A dask.distributed Client for `address` ('local:N' or a scheduler address), None without one."""
    if not address:
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
