"""Classical MRS preprocessing: coil combination, HLSVD water removal, eddy-current correction,
outlier-transient scores."""
from __future__ import annotations

import numpy as np
from scipy.linalg import eigh, hankel, lstsq

from speclearn.core.errors import InputError
from speclearn.core.threads import single_threaded_blas
from speclearn.mrs.data import WATER_PPM, MRSData, edge_noise_power, mirrored, ppm_slice


#: NIfTI-MRS dimensions whose rows are not repeats of one signal, so neither averaged nor combined here
UNSUPPORTED_DIMS = ("DIM_EDIT", "DIM_ISIS", "DIM_INDIRECT_0", "DIM_INDIRECT_1", "DIM_INDIRECT_2")


def _coil_blocks(data: MRSData) -> tuple[np.ndarray, list[tuple[str, int]]] | None:
    """(fid as (other rows, coils, points), the other dimensions) when `data` has a DIM_COIL dimension."""
    tags = [tag.upper() for tag, _ in data.dims]
    unsupported = [tag for tag in tags if tag in UNSUPPORTED_DIMS]
    if unsupported:
        raise InputError(f"{', '.join(unsupported)} dimension (edited, ISIS or multi-dimensional acquisitions) is not "
                         "supported: give one sub-spectrum per file", file=data.source)
    sizes = [size for _, size in data.dims]
    if "DIM_COIL" not in tags or int(np.prod(sizes)) != data.n:
        return None
    # rows are the dimensions flattened with the first fastest: C order over the reversed sizes
    cube = np.moveaxis(data.fid.reshape(*reversed(sizes), data.points), len(sizes) - 1 - tags.index("DIM_COIL"), -2)
    return cube.reshape(-1, cube.shape[-2], data.points), [d for d, tag in zip(data.dims, tags) if tag != "DIM_COIL"]


def coil_weights(blocks: np.ndarray, noise: np.ndarray | None = None, head: int = 8) -> np.ndarray:
    """Complex weights (coils,) of signal-to-noise-squared coil combination from repeats (rows, coils,
    points) of one signal: the conjugate of each coil's signal at t ~ 0 (mean of its first `head`
    points, averaged over the repeats) over its noise variance, measured in the outer fifth of the
    spectral band (far from water and every metabolite) of `noise`, repeats (rows, coils, points) of
    water-suppressed data (None: the same noise in every coil; a water reference's own band edges hold
    the tails of its water line). Scaled so that the combined FID has the root-sum-of-squares amplitude
    of the coils' signals."""
    amplitude = blocks[:, :, :head].mean(axis=(0, 2))
    variance = np.ones(blocks.shape[1])
    if noise is not None:
        variance = edge_noise_power(noise).mean(axis=0) / noise.shape[2]
        variance = np.maximum(variance, 1e-30 * max(variance.max(), 1e-300))
    snr2 = np.abs(amplitude) ** 2 / variance
    return amplitude.conj() / variance * (np.linalg.norm(amplitude) / max(snr2.sum(), 1e-300))


def _combined(data: MRSData, blocks: np.ndarray, dims: list[tuple[str, int]], weights: np.ndarray) -> MRSData:
    fid = np.einsum("rcp,c->rp", blocks, weights)
    scan = data.scans[0]
    ids = [scan] if len(fid) == 1 else [f"{scan}_{k}" for k in range(len(fid))]
    return data.with_fid(fid, ids=ids, scans=[scan] * len(fid), dims=dims)


def combine_coils(data: MRSData, reference: MRSData | None = None) -> tuple[MRSData, MRSData | None]:
    """Combine the DIM_COIL dimension of single-voxel data and its water reference (no-op without one)
    with the same weights (`coil_weights`), so water scaling is unchanged by the combination: the coils'
    signal from the reference when it has coils (its SNR is far higher), their noise from the data."""
    blocks = _coil_blocks(data)
    ref_blocks = None if reference is None else _coil_blocks(reference)
    if blocks is None and ref_blocks is None:
        return data, reference
    if blocks is not None and ref_blocks is not None and blocks[0].shape[1] != ref_blocks[0].shape[1]:
        raise InputError(f"{blocks[0].shape[1]} coils in the data but {ref_blocks[0].shape[1]} in the water "
                         "reference", file=reference.source)
    weights = coil_weights((ref_blocks or blocks)[0], None if blocks is None else blocks[0])
    return (data if blocks is None else _combined(data, *blocks, weights),
            reference if ref_blocks is None else _combined(reference, *ref_blocks, weights))


def conjugate_mirrored(data: MRSData, reference: MRSData | None = None, *,
                       margin: float = 2.0) -> tuple[MRSData, MRSData | None, bool]:
    """(data, reference, whether they were conjugated): data of the opposite sign convention (its
    highest peak on the far side of 4.65 ppm, `margin` x the highest on the metabolites' side:
    `mrs.data.mirrored`) conjugated, with its water reference."""
    if not mirrored(data.fid, data.dwell_time_s, data.central_frequency_mhz, margin=margin):
        return data, reference, False
    return data.with_fid(data.fid.conj()), None if reference is None else reference.with_fid(reference.fid.conj()), True


def hlsvd_components(fid: np.ndarray, dwell_time_s: float, *, rank: int = 20,
                     points: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Poles and amplitudes of a sum of damped complex exponentials fitted to the first `points`
    of `fid` (HLSVD: signal subspace of the Hankel matrix, the leading eigenvectors of H H^*; poles
    from its shift invariance)."""
    x = fid[:min(points, fid.size)]
    # points / 2 rows: 64 rows took 0.6 of the time with the same errors up to 10x NAA's water residual, but at
    # 100-1000x the LCM's mean absolute error rose by 1.5 points (150 spectra at SNR 40, paired p 0.0007)
    rows = x.size // 2
    H = hankel(x[:rows], x[rows - 1:])
    # single precision halves the eigensolver's time; the water components move by < 3e-4 relative
    U = eigh((H @ H.conj().T).astype(np.complex64), subset_by_index=[rows - rank, rows - 1])[1].astype(complex)
    Z = lstsq(U[:-1], U[1:], lapack_driver="gelsy")[0]
    poles = np.linalg.eigvals(Z)
    V = np.exp(np.outer(np.arange(x.size), np.log(poles)))
    amplitudes = lstsq(V, x, lapack_driver="gelsy")[0]
    return poles, amplitudes


#: where the water peak is looked for: up to 0.4 ppm below 4.65 (the metabolites reach ~4.1 ppm) and 0.55 above
WATER_SEARCH_PPM = (4.25, 5.2)


@single_threaded_blas
def hlsvd_water_removal(data: MRSData, ppm_range: tuple[float, float] = (4.5, 4.8), *, rank: int = 20,
                        min_ratio: float = 1.0) -> MRSData:
    """Subtract the HLSVD components whose frequency lies in `ppm_range` (residual water), in the
    spectra whose highest point in `WATER_SEARCH_PPM` exceeds `min_ratio` x their NAA peak (elsewhere
    the few-component model would take metabolite signal with it). Where that water peak lies outside
    `ppm_range` (a frequency offset), the band is its +-0.15 ppm instead."""
    n = np.arange(data.points)
    out = data.fid.copy()
    ppm, spectra = data.ppm(), np.abs(data.spectrum())
    near = ppm_slice(ppm, *WATER_SEARCH_PPM)
    water = spectra[:, near].max(axis=1)
    naa = spectra[:, ppm_slice(ppm, 1.9, 2.1)].max(axis=1)
    for k in np.flatnonzero(water > min_ratio * naa):
        fid = data.fid[k]
        poles, amplitudes = hlsvd_components(fid, data.dwell_time_s, rank=rank)
        pole_ppm = WATER_PPM + np.angle(poles) / (2 * np.pi * data.dwell_time_s) / data.central_frequency_mhz
        # a water peak outside the band (the scan's frequency is off) moves the band with it
        peak = ppm[near][np.argmax(spectra[k, near])]
        low, high = ppm_range if ppm_range[0] <= peak <= ppm_range[1] else (peak - 0.15, peak + 0.15)
        chosen = (pole_ppm >= low) & (pole_ppm <= high) & (np.abs(poles) < 1)
        if chosen.any():
            out[k] -= np.exp(np.outer(n, np.log(poles[chosen]))) @ amplitudes[chosen]
    return data.with_fid(out)


def eddy_current_correction(data: MRSData, water: MRSData) -> MRSData:
    """Klose correction: divide out the time-dependent phase of the water reference (one per scan, or one)."""
    if water.n not in (1, data.n) or water.points != data.points:
        raise InputError(f"{water.n} water references of {water.points} points for {data.n} FIDs of "
                         f"{data.points} points", file=water.source)
    phase = np.unwrap(np.angle(water.fid), axis=1)
    return data.with_fid(data.fid * np.exp(-1j * phase))


def transient_outlier_scores(data: MRSData, ppm_range: tuple[float, float] = (1.8, 4.2)) -> np.ndarray:
    """Robust z-score per transient of its distance to its scan's median spectrum (aligned data).

    Distance: squared difference of the complex spectra in `ppm_range`; z = (d - median) / (1.4826 MAD)
    within the scan. z > 3 marks an outlier (FSL-MRS's 'unlike' rejection is similar).
    """
    window = ppm_slice(data.ppm(), *ppm_range)
    spectra = data.spectrum()[:, window]
    scans = np.asarray(data.scans)
    scores = np.zeros(data.n)
    for name in data.scan_names():
        rows = np.flatnonzero(scans == name)
        if rows.size < 3:
            continue
        block = spectra[rows]
        reference = np.median(block.real, axis=0) + 1j * np.median(block.imag, axis=0)
        distance = np.sum(np.abs(block - reference) ** 2, axis=1)
        centre = np.median(distance)
        spread = 1.4826 * np.median(np.abs(distance - centre))
        scores[rows] = (distance - centre) / max(spread, 1e-12 * max(centre, 1e-300))
    return scores
