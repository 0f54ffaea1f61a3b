"""Running speclearn's dask work on a dask.distributed cluster (`--scheduler ADDRESS|local:N`).

`scheduler(address)` is a context manager: without an address nothing changes (dask's local
threaded scheduler); `local:N` starts a LocalCluster of N single-threaded worker processes;
anything else is the address of a running scheduler (`tcp://host:8786`). While it is open every
dask computation (reading Zarr, preprocessing, writing) runs on that cluster. `unmix_lazy` turns a
fixed-spectra unmixing into a dask graph (one task per storage chunk of rows, or `MIN_TASKS` tasks when
the chunks are fewer), so the Poisson fits run on the workers, not in the client.

`map_spectra` and `predict_table` apply a fitted model chunk by chunk: a lazy (Zarr/HDF5) input
becomes a dask graph with one task per storage chunk of spectra (whole spectra per task), so the
result streams into Zarr (or into a table) without the input ever being held whole; numpy input is
applied in one call.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.memory import MMAP_THRESHOLD
from speclearn.core.spectra import Spectra


#: glibc's mmap threshold for the workers we start (`core.memory.MMAP_THRESHOLD`): Dask's nanny's
#: MALLOC_TRIM_THRESHOLD_ would freeze it at 128 KiB, making every larger numpy temporary a fresh mmap
#: (measurement: docs/notes/distributed.md). Trimming still returns memory.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}


def local_cluster(n_workers: int, **kwargs: Any):
    """A LocalCluster of `n_workers` single-threaded worker processes started with `WORKER_ENV`."""
    import dask
    from dask.distributed import LocalCluster
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            **kwargs)


@contextlib.contextmanager
def scheduler(address: str | None) -> Iterator[Any]:
    """A dask.distributed Client for `address` ('local:N' or a scheduler address), None without one."""
    if not address:
        from speclearn.progress import dask_progress
        with dask_progress("computing"):
            yield None
        return
    try:
        from dask.distributed import Client
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
        cluster = address = local_cluster(workers)
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
    """Abundances (rows, x, K) of one chunk of rows with the spectra fixed (runs on a worker), solved in
    the same bands as the in-process path (small bands converge sooner: the solver stops when all
    pixels of a band have)."""
    from speclearn.unmix._base import fractions, kl_abundances, rows_per_block, solver_copies
    _, nx, n_channels = block.shape
    rows = rows_per_block(nx, n_channels, copies=solver_copies(components.shape[0]))
    parts = []
    for start in range(0, block.shape[0], rows):
        band = np.asarray(block[start:start + rows], dtype=float)
        bad = ~np.isfinite(band) | (band < 0)
        if bad.any():
            value = band[tuple(np.argwhere(bad)[0])]
            raise InputError(f"the cube holds a NaN, infinite or negative value ({value:g})")
        parts.append(kl_abundances(band, components, max_iter=max_iter))
    counts = np.concatenate(parts)
    return fractions(counts) if sum_to_one else counts


#: Fewest tasks `unmix_lazy` splits a cube into (when its storage chunks are fewer; each is still read once),
#: so that every worker of a small cluster has work: a cube stored in 1-3 chunks would leave the others idle.
#: Not done for `map_spectra`: a filter costs less than moving the pieces (docs/notes/distributed.md).
MIN_TASKS = 8


def unmix_lazy(intensity: Any, components: np.ndarray, *, sum_to_one: bool = True, max_iter: int = 1000) -> Any:
    """Abundances (K, y, x) of a (y, x, channels) dask cube as a dask array: one task per chunk of rows
    (the storage chunking, with whole rows and all channels per task; a chunk is split into whole solver
    bands when the cube has fewer than `MIN_TASKS` chunks, each chunk still read once)."""
    import dask.array as da
    from speclearn.unmix._base import rows_per_block, solver_copies
    cube = intensity if isinstance(intensity, da.Array) else da.from_array(np.asarray(intensity))
    if cube.ndim != 3:
        raise InputError(f"the cube must be 3-D (y, x, channels), got shape {tuple(cube.shape)}")
    components = np.asarray(components, dtype=float)
    if cube.shape[-1] != components.shape[1]:
        raise InputError(f"the cube has {cube.shape[-1]} channels, the components {components.shape[1]}")
    k = components.shape[0]
    ny, nx, n_channels = cube.shape
    band = rows_per_block(nx, n_channels, copies=solver_copies(k))
    rows = min(cube.chunks[0][0], band * max(1, -(-ny // (MIN_TASKS * band))))
    cube = cube.rechunk({0: rows, 1: -1, 2: -1}) if len(cube.chunks[0]) < MIN_TASKS else cube.rechunk({1: -1, 2: -1})
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
    return spectra.with_intensity(out, probe.axis, axis_kind=probe.axis_kind, axis_unit=probe.axis_unit)


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
    table.index = spectra.ids_at(slice(None))
    return table



def _data_parallel_worker(rank: int, world: int, backend: str, init: str, fn: Callable, args: tuple, out: str) -> None:
    import torch
    import torch.distributed as dist
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        result = fn(rank, *args)
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def data_parallel(fn: Callable, *args, processes: int = 2, backend: str = "gloo") -> Any:
    """Run `fn(rank, *args)` in `processes` processes joined in a torch.distributed group (gloo on CPUs,
    nccl for one GPU per process); `models.train` inside it trains data-parallel. Returns rank 0's result,
    which must be tensors, numbers, strings or lists/dicts of them (it is read back without unpickling code)."""
    import tempfile
    from pathlib import Path
    import torch
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.pt")
        mp.start_processes(_data_parallel_worker, args=(processes, backend, f"file://{tmp}/rendezvous", fn, args, out),
                           nprocs=processes, start_method="fork" if backend == "gloo" else "spawn")
        return torch.load(out, weights_only=True)


# --- benchmark: `speclearn bench scale` / benchmarks/scale.py ------------------------------------------

#: scale -> (map sizes (ny = nx), channels, the size whose in-memory numpy run is the baseline)
SCALES = {"quick": ((32, 64, 96), 512, 64), "full": ((64, 96, 128), 2048, 96),
          "large": ((128, 256, 512), 2048, 128), "protocol": ((256, 512, 1024), 2048, 256)}
NAME = "scale"
WORKERS, MEMORY_LIMIT = 2, 2 * 10**9
DOSE = 200.0


def _counts_block(block_info=None, *, spectra: np.ndarray, nx: int, seed: int) -> np.ndarray:
    """Poisson counts of one band of rows: smooth abundance fields x the phase spectra."""
    (y0, y1), _, _ = block_info[None]["array-location"]
    yy, xx = np.meshgrid(np.arange(y0, y1) / 37.0, np.arange(nx) / 41.0, indexing="ij")
    fields = np.stack([1.2 + np.sin(k * yy + xx) * np.cos(xx - k * yy) for k in range(len(spectra))], axis=-1)
    fields /= fields.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(y0,)))
    return rng.poisson(DOSE * fields @ spectra).astype(np.int32)


def write_test_cube(path, size: int, n_channels: int, seed: int) -> Spectra:
    """A size x size x n_channels EDX-like count cube (4 phases) streamed into Zarr, read back lazily."""
    import dask.array as da
    from speclearn.io import read_spectra, write_spectra
    from speclearn.io.arrays import _pixel_chunks
    from speclearn.simulate.edx import simulate_edx
    phases = simulate_edx(2, 2, n_channels, seed=seed)
    spectra = phases.phase_spectra / phases.phase_spectra.sum(axis=1, keepdims=True)
    rows = _pixel_chunks((size, size, n_channels))[0]
    cube = da.map_blocks(_counts_block, spectra=spectra, nx=size, seed=seed, dtype=np.int32,
                         chunks=(da.core.normalize_chunks(rows, (size,))[0], (size,), (n_channels,)))
    write_spectra(Spectra(cube, phases.spectra.axis, axis_kind="energy", axis_unit="keV"), path, overwrite=True)
    return read_spectra(path)


def _savgol(block: Spectra) -> Spectra:
    from speclearn.preprocessing import SavitzkyGolay
    return block.with_intensity(SavitzkyGolay(window_length=11, polyorder=2).fit_transform(block.values()))


def _peak_memory(client) -> list[float]:
    """Peak resident memory (bytes) of each worker since it started (its system monitor's samples)."""
    peaks = client.run(lambda dask_worker: max(dask_worker.monitor.quantities["memory"]))
    return [float(v) for v in peaks.values()]


def _kernel_seconds(band: np.ndarray, components: np.ndarray) -> float:
    """Wall time of the unmixing kernel on one chunk (to compare a worker with the client process)."""
    import time
    start = time.perf_counter()
    _fit_block(band, components, 1000, True)
    return time.perf_counter() - start


def _import_all() -> None:
    """Import in a worker what the benchmark's tasks use: the solver, the filter, Zarr reading."""
    import importlib
    for name in ("speclearn.unmix._base", "speclearn.preprocessing", "speclearn.io", "zarr", "xarray", "numcodecs"):
        importlib.import_module(name)


def _cpu_seconds() -> float:
    """CPU time (user + system) this process has used."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _distributed_run(cube: Spectra, components: np.ndarray, out_zarr, *, address: str | None = None) -> dict:
    """Unmix (fixed spectra) and denoise (Savitzky-Golay into Zarr) `cube` on a fresh 2-worker LocalCluster
    with 2 GB per worker (or on `address`): wall times, CPU seconds (workers and client), peak memory per
    worker, whether workers died."""
    import time
    from dask.distributed import Client
    from speclearn.io import write_spectra
    cluster = local_cluster(WORKERS, memory_limit=MEMORY_LIMIT)
    with cluster, Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        client.run(_import_all)  # imports are not part of the timing (measured: ~1 s of CPU per worker)
        cpu = lambda: sum(client.run(_cpu_seconds).values()) + _cpu_seconds()  # noqa: E731
        cpu0, start = cpu(), time.perf_counter()
        abundances = np.asarray(unmix_lazy(cube.intensity, components).compute())
        unmix_s, cpu1 = time.perf_counter() - start, cpu()
        start = time.perf_counter()
        write_spectra(map_spectra(cube, _savgol), out_zarr, overwrite=True)
        denoise_s, cpu2 = time.perf_counter() - start, cpu()
        peaks = _peak_memory(client)
        survived = set(client.scheduler_info()["workers"]) == workers
        band = np.asarray(cube.intensity[:cube.intensity.chunks[0][0]].compute())
        on_worker = client.submit(_kernel_seconds, band, components, pure=False).result()
    here = _kernel_seconds(band, components)
    return {"unmix_s": unmix_s, "denoise_s": denoise_s, "unmix_cpu_s": cpu1 - cpu0, "denoise_cpu_s": cpu2 - cpu1,
            "peak_worker_memory_gb": [p / 1e9 for p in peaks],
            "workers_survived": survived, "kernel_worker_s": on_worker, "kernel_client_s": here,
            "abundance_mean": abundances.reshape(len(components), -1).mean(1).tolist()}


def _numpy_run(cube: Spectra, components: np.ndarray, out_zarr) -> dict:
    """The single-process path on the cube held in memory: the streamed unmixer and the filter on numpy
    (`*_s`); reading the cube from Zarr and writing the filtered one back timed apart."""
    import time
    from speclearn.io import write_spectra
    from speclearn.unmix.model import FixedSpectraUnmixer
    start = time.perf_counter()
    data = cube.compute()
    read_s = time.perf_counter() - start
    cpu0, start = _cpu_seconds(), time.perf_counter()
    FixedSpectraUnmixer().fit(components, data.axis_spec()).transform(data)
    unmix_s, cpu1 = time.perf_counter() - start, _cpu_seconds()
    start = time.perf_counter()
    denoised = _savgol(Spectra(data.flat(), data.axis, axis_kind=data.axis_kind, axis_unit=data.axis_unit))
    denoise_s, cpu2 = time.perf_counter() - start, _cpu_seconds()
    start = time.perf_counter()
    write_spectra(data.with_intensity(denoised.intensity), out_zarr, overwrite=True)
    return {"unmix_s": unmix_s, "denoise_s": denoise_s, "read_s": read_s, "write_s": time.perf_counter() - start,
            "unmix_cpu_s": cpu1 - cpu0, "denoise_cpu_s": cpu2 - cpu1}


def run_benchmark(out_dir, *, scale: str = "quick", seed: int = 0) -> dict:
    """Unmix and denoise Zarr spectrum images of 3 sizes on a LocalCluster (2 workers x 2 GB); compare
    the throughput with the single-process numpy path; fit time ~ pixels^exponent."""
    import json
    import platform
    import shutil
    import tempfile
    import time
    from pathlib import Path
    from speclearn.unmix import METHODS
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}; choose {', '.join(SCALES)}")
    sizes, n_channels, baseline_size = SCALES[scale]
    out_dir = Path(out_dir)
    work = Path(tempfile.mkdtemp(prefix="speclearn-scale-"))
    rows, started = [], time.perf_counter()
    try:
        start = time.perf_counter()
        fit_cube = write_test_cube(work / "fit.zarr", 32, n_channels, seed)  # the spectra to apply (fit not timed)
        psnmf = METHODS["psnmf"](4, random_state=seed).fit(fit_cube)
        components, fit_s = psnmf.components_, time.perf_counter() - start
        for size in sizes:
            start = time.perf_counter()
            cube = write_test_cube(work / f"cube{size}.zarr", size, n_channels, seed)
            row = {"size": f"{size}x{size}x{n_channels}", "pixels": size * size, "write_s": time.perf_counter() - start,
                   "zarr_gb": sum(f.stat().st_size for f in (work / f"cube{size}.zarr").rglob("*") if f.is_file()) / 1e9,
                   "float32_gb": size * size * n_channels * 4 / 1e9, **_distributed_run(cube, components,
                                                                                         work / "denoised.zarr")}
            if size == baseline_size:
                row["numpy"] = _numpy_run(cube, components, work / "denoised-numpy.zarr")
                shutil.rmtree(work / "denoised-numpy.zarr", ignore_errors=True)
            shutil.rmtree(work / "denoised.zarr", ignore_errors=True)
            shutil.rmtree(work / f"cube{size}.zarr", ignore_errors=True)
            rows.append(row)
            (out_dir / f"{NAME}.partial.json").write_text(json.dumps(rows, indent=2, default=float))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pixels = np.array([r["pixels"] for r in rows], float)
    exponents = {step: float(np.polyfit(np.log(pixels), np.log([r[f"{step}_s"] for r in rows]), 1)[0])
                 for step in ("unmix", "denoise")}
    cpu_exponents = {step: float(np.polyfit(np.log(pixels), np.log([r[f"{step}_cpu_s"] for r in rows]), 1)[0])
                     for step in ("unmix", "denoise")}
    base = next(r for r in rows if "numpy" in r)
    ratio = {step: base["numpy"][f"{step}_s"] / base[f"{step}_s"] for step in ("unmix", "denoise")}
    numpy = base["numpy"]
    ratio_with_io = {"unmix": (numpy["read_s"] + numpy["unmix_s"]) / base["unmix_s"],
                     "denoise": (numpy["read_s"] + numpy["denoise_s"] + numpy["write_s"]) / base["denoise_s"]}
    peak = max(max(r["peak_worker_memory_gb"]) for r in rows)
    largest = rows[-1]
    full_pixels = 1024 * 1024
    extrapolated = {f"{step}{how}": largest[f"{step}_s"] * (full_pixels / largest["pixels"]) ** k
                    for step in ("unmix", "denoise") for how, k in (("", 1.0), ("_fitted_exponent", exponents[step]))}
    summary = {"scale": scale, "largest": largest["size"], "all_completed": all(r["workers_survived"] for r in rows),
               "peak_worker_memory_gb": peak, "memory_limit_gb": MEMORY_LIMIT / 1e9,
               "within_memory_limit": peak <= MEMORY_LIMIT / 1e9,
               "throughput_vs_numpy": ratio, "throughput_vs_numpy_with_io": ratio_with_io,
               "cpu_numpy_vs_cluster": {step: numpy[f"{step}_cpu_s"] / base[f"{step}_cpu_s"] for step in ("unmix", "denoise")},
               "cores_used": {step: base[f"{step}_cpu_s"] / base[f"{step}_s"] for step in ("unmix", "denoise")},
               "numpy_cores_used": {step: numpy[f"{step}_cpu_s"] / numpy[f"{step}_s"] for step in ("unmix", "denoise")},
               "kernel_worker_vs_client": float(np.mean([r["kernel_worker_s"] / r["kernel_client_s"] for r in rows])), "within_20_percent": {k: v >= 0.8 for k, v in ratio.items()},
               "time_exponent": exponents, "cpu_time_exponent": cpu_exponents, "psnmf_fit_s": fit_s,
               "extrapolated_1024x1024x2048_s": (extrapolated if n_channels == 2048 and largest["pixels"] < full_pixels
                                                 else None),
               "wall_s": time.perf_counter() - started}
    result = {"summary": summary, "rows": rows, "workers": WORKERS, "memory_limit_gb": MEMORY_LIMIT / 1e9,
              "machine": f"{platform.machine()} {platform.processor() or ''}, {__import__('os').cpu_count()} cores".strip()}
    (out_dir / f"{NAME}.json").write_text(json.dumps(result, indent=2, default=float))
    (out_dir / f"{NAME}.md").write_text(_markdown(result))
    (out_dir / f"{NAME}.partial.json").unlink(missing_ok=True)
    return result


def _markdown(result: dict) -> str:
    s = result["summary"]
    lines = [f"# Scale: Zarr spectrum images on a LocalCluster ({result['workers']} workers x "
             f"{result['memory_limit_gb']:g} GB), scale `{s['scale']}`", "",
             "Each cube (4 phases, ~200 counts per pixel, int32 Zarr) is unmixed with PSNMF spectra fixed "
             "(Poisson fit per pixel, one task per storage chunk) and denoised with a Savitzky-Golay filter "
             "(11 channels) written back to Zarr. The baseline is the single-process numpy path on the same cube "
             f"held in memory. Machine: {result['machine']} (shared with other jobs).", "",
             "| cube | pixels | float32 size (GB) | unmix (s) | unmix CPU (s) | unmix (spectra/s) | denoise (s) "
             "| denoise CPU (s) | denoise (spectra/s) | peak memory per worker (GB) | workers survived |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['size']} | {r['pixels']} | {r['float32_gb']:.2f} | {r['unmix_s']:.1f} | {r['unmix_cpu_s']:.0f} | "
                     f"{r['pixels'] / r['unmix_s']:.0f} | {r['denoise_s']:.1f} | {r['denoise_cpu_s']:.0f} | "
                     f"{r['pixels'] / r['denoise_s']:.0f} | {max(r['peak_worker_memory_gb']):.2f} | {r['workers_survived']} |")
        if "numpy" in r:
            n = r["numpy"]
            lines.append(f"| {r['size']} numpy, 1 process | {r['pixels']} | {r['float32_gb']:.2f} | {n['unmix_s']:.1f} | "
                         f"{n['unmix_cpu_s']:.0f} | {r['pixels'] / n['unmix_s']:.0f} | {n['denoise_s']:.1f} | "
                         f"{n['denoise_cpu_s']:.0f} | {r['pixels'] / n['denoise_s']:.0f} | - | - |")
    ratio, exp = s["throughput_vs_numpy"], s["time_exponent"]
    lines += ["", f"- Completed at every size: {s['all_completed']}; peak memory per worker {s['peak_worker_memory_gb']:.2f} GB "
              f"(limit {s['memory_limit_gb']:g} GB): {'within' if s['within_memory_limit'] else 'OVER'} the limit.",
              f"- Throughput of the cluster / single-process numpy: unmix {ratio['unmix']:.2f}, denoise "
              f"{ratio['denoise']:.2f} (target >= 0.8: {'met' if s['within_20_percent']['unmix'] else 'NOT met'} "
              f"for unmix, {'met' if s['within_20_percent']['denoise'] else 'NOT met'} for denoise).",
              f"- The same with the numpy path's Zarr reading (and, for denoise, writing) counted, as the cluster's is: "
              f"unmix {s['throughput_vs_numpy_with_io']['unmix']:.2f}, denoise {s['throughput_vs_numpy_with_io']['denoise']:.2f}.",
              f"- CPU seconds of the numpy path / of the cluster (workers + client) for the same cube: unmix "
              f"{s['cpu_numpy_vs_cluster']['unmix']:.2f}, denoise {s['cpu_numpy_vs_cluster']['denoise']:.2f} (1.0: no "
              f"work added by the cluster). Cores the cluster obtained: unmix {s['cores_used']['unmix']:.2f}, denoise "
              f"{s['cores_used']['denoise']:.2f} of its 2 workers; the numpy process obtained "
              f"{s['numpy_cores_used']['unmix']:.2f} of its 1 (other jobs share the 2 cores).",
              f"- Time ~ pixels^k: k = {exp['unmix']:.2f} (unmix), {exp['denoise']:.2f} (denoise); on CPU seconds "
              f"(workers + client, less sensitive to other jobs on the machine): k = {s['cpu_time_exponent']['unmix']:.2f} "
              f"(unmix), {s['cpu_time_exponent']['denoise']:.2f} (denoise).",
              f"- The unmixing kernel on one chunk takes {s['kernel_worker_vs_client']:.1f}x as long in a worker as in "
              "the client process (same code and data, measured after each run, on this shared machine). Workers start "
              "with glibc's mmap threshold at 32 MiB (`WORKER_ENV`): with dask's default environment alone every numpy "
              "temporary over 128 KiB was a fresh mmap, and the same kernel took 2.6-2.9x as long in a worker.",
              f"- Largest cube run: {s['largest']}; total wall time {s['wall_s'] / 60:.1f} min."]
    if s.get("extrapolated_1024x1024x2048_s"):
        e = s["extrapolated_1024x1024x2048_s"]
        lines.append(f"- Not run: 1024x1024x2048 (8.6 GB as float32). Extrapolated from the largest cube, linear in "
                     f"pixels (the work is per pixel): unmix {e['unmix'] / 60:.0f} min, denoise {e['denoise'] / 60:.0f} "
                     f"min on this machine (with the fitted exponents: {e['unmix_fitted_exponent'] / 60:.0f} and "
                     f"{e['denoise_fitted_exponent'] / 60:.0f} min).")
    return "\n".join(lines) + "\n"
