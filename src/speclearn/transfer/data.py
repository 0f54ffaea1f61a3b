"""Paired data for transfer models: pairing by id, per-instrument preprocessing, on-disk row streams.

Every model sees spectra after the seed-003 preprocessing of *its own instrument*: rolling-minimum +
Gaussian baseline removal, then standard scaling with statistics of that instrument's training
spectra only. The scaling is reversible; predictions are returned unscaled.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from speclearn.core.errors import InputError
from speclearn.core.memory import iter_blocks
from speclearn.core.spectra import Spectra, is_dask
from speclearn.preprocessing import BaselineCorrector, StandardScaler

#: rows per block when a lazy (dask/Zarr) array is streamed through preprocessing or prediction
BLOCK_ROWS = 1024


def pair(primary: Spectra, secondary: Spectra) -> tuple[Spectra, Spectra]:
    """The two sets restricted to the same ids in the same order; unpaired ids are an input error."""
    p_ids, s_ids = primary.meta.index, secondary.meta.index
    if p_ids.equals(s_ids):
        return primary, secondary
    only_p, only_s = p_ids.difference(s_ids), s_ids.difference(p_ids)
    if len(only_p):
        raise InputError(f"id {only_p[0]!r} has no paired secondary spectrum "
                         f"({len(only_p)} unpaired ids)", file=primary.source)
    if len(only_s):
        raise InputError(f"id {only_s[0]!r} has no paired primary spectrum "
                         f"({len(only_s)} unpaired ids)", file=secondary.source)
    return primary, secondary.select(p_ids)


def check_finite(spectra: Spectra) -> None:
    """Refuse NaN/inf intensities (checked blockwise for lazy data)."""
    for start, _, _, block in iter_blocks(spectra.flat(), BLOCK_ROWS):
        bad = np.argwhere(~np.isfinite(block))
        if bad.size:
            r, c = bad[0]
            raise InputError("value is not finite", file=spectra.source,
                             row=f"{start + r + 1} (id {spectra.ids[start + r]!r})", column=int(c) + 2)


def instrument_pipeline(window: int, sigma: float) -> Pipeline:
    """Baseline removal (rolling minimum + Gaussian) then reversible standard scaling."""
    return Pipeline([("baseline", BaselineCorrector(method="rolling_min", window=window, sigma=sigma)),
                     ("scale", StandardScaler())])


def fit_pipeline(spectra: Spectra, window: int, sigma: float) -> Pipeline:
    """Fit the instrument pipeline on training spectra; lazy data in one pass holding one block at a time."""
    pipe = instrument_pipeline(window, sigma)
    X = spectra.flat()
    baseline, scaler = pipe.named_steps["baseline"].fit(X), pipe.named_steps["scale"]
    if not is_dask(X):
        scaler.fit(baseline.transform(X))
        return pipe
    count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for _, _, _, block in iter_blocks(X, BLOCK_ROWS):  # merge per-block moments (Chan et al.), exact to rounding
        block = baseline.transform(block)
        block_mean = block.mean(axis=0)
        delta, total = block_mean - mean, count + len(block)
        m2 += ((block - block_mean) ** 2).sum(axis=0) + delta ** 2 * count * len(block) / total
        mean += delta * len(block) / total
        count = total
    scaler.fit(np.stack([mean, mean]))  # sets the fitted state; the moments come from the pass above
    std = np.sqrt(m2 / count)
    scaler.mean_, scaler.scale_ = mean, np.where(std > 0, std, 1.0)
    return pipe


def baseline_removed(pipe: Pipeline, spectra: Spectra) -> Spectra:
    """Spectra with only the (stateless) baseline step applied: the space results are reported in."""
    return spectra.with_intensity(pipe.named_steps["baseline"].transform(spectra.flat()))


def scaled_array(pipe: Pipeline, spectra: Spectra, *, spool: Path | None = None) -> np.ndarray:
    """Preprocessed float32 (n, channels); lazy input is streamed block by block into a memmap in `spool`."""
    X = spectra.flat()
    if not is_dask(X):
        return pipe.transform(np.asarray(X, dtype=float)).astype(np.float32)
    spool = Path(spool or tempfile.mkdtemp(prefix="speclearn-transfer-"))
    out = np.lib.format.open_memmap(spool / f"rows-{id(spectra)}.npy", mode="w+", dtype=np.float32,
                                    shape=X.shape)
    for start, _, _, block in iter_blocks(X, BLOCK_ROWS):
        out[start:start + len(block)] = pipe.transform(block)
    out.flush()
    return out


def scaled_arrays(pairs: list[tuple[Pipeline, Spectra]], spool: Path) -> list[np.ndarray]:
    return [scaled_array(pipe, spectra, spool=spool) for pipe, spectra in pairs]


def unscale(pipe: Pipeline, X: np.ndarray) -> np.ndarray:
    """Back from the scaled space to the measured (baseline-removed) intensity scale."""
    return pipe.named_steps["scale"].inverse_transform(np.asarray(X, dtype=float))


class Rows:
    """Rows of a numpy array or memmap served as float32 torch tensors: what `train` indexes per batch.

    With a memmap only the requested batch is read, so memory stays flat as the data grow.
    """

    def __init__(self, array: np.ndarray):
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        return torch.from_numpy(np.ascontiguousarray(self.array[index], dtype=np.float32))


def as_output(secondary: Spectra, values: np.ndarray, axis_spec: dict) -> Spectra:
    """Predicted primary spectra: the secondary's ids/metadata/layout on the primary axis."""
    out = secondary.with_intensity(np.asarray(values), axis=np.asarray(axis_spec["values"], dtype=float))
    return replace(out, axis_kind=axis_spec["kind"], axis_unit=axis_spec["unit"])
