"""Linear-combination model fit (LCModel / FSL-MRS style) with Cramer-Rao lower bounds.

Model of the spectrum in the fit window (default 0.2-4.2 ppm):
    Y(v) = exp(i(phi0 + phi1 (ppm - 4.65))) [ sum_m a_m FFT(B_m(t) exp(-g t - s^2 t^2 + i 2 pi e t)) + P(v) b ]
with basis FIDs B_m, amplitudes a_m >= 0, one shift e (Hz), Lorentzian g and Gaussian s broadening,
phases phi0, phi1 and a complex Legendre-polynomial baseline P b. Variable projection: for given
nonlinear parameters the baseline is projected out and the amplitudes solved by NNLS, so only the five
nonlinear parameters go to `scipy.optimize.least_squares`. CRLBs are the square roots of the diagonal
of the inverse Fisher information J^T J / sigma^2 over all parameters (amplitudes, baseline,
nonlinear), sigma^2 from the residual.

Units: ratio to total creatine (Cr + PCr), or mM with a water reference by the ISMRM 2016 challenge
convention: c = 29697 mM x 1.206 x a / (water area / 2 protons) (`water_scale`).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.fft
from scipy.linalg import cho_factor, cho_solve
from scipy.ndimage import uniform_filter1d
from scipy.optimize import least_squares, nnls
from sklearn.base import BaseEstimator

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.threads import single_threaded_blas
from speclearn.mrs.basis import COMBINED, MACROMOLECULES, Basis
from speclearn.mrs.data import WATER_PPM, MRSData, edge_noise_power, ppm_axis, ppm_slice
from speclearn.mrs.preprocess import hlsvd_water_removal
from speclearn.mrs.simulate import METABOLITE_RELAXATION, WATER_CONCENTRATION, WATER_PROTONS

NONLINEAR = ("shift_hz", "lorentzian", "gaussian", "phase0", "phase1")
#: Levenberg-Marquardt stops once no step exceeds these (Hz, 1/s, 1/s^2 of the squared Gaussian, rad, rad/ppm)
STEP_TOLERANCE = np.array([0.01, 0.05, 1.0, 1e-3, 1e-3])
#: ... or once its next step would lower the chi-square by less than this (moving the parameters by < 0.1 sd)
MIN_CHI2_DROP = 0.01
LIPIDS = (0.9, 1.3)
LIPID_FWHM_HZ = (12.0, 30.0)


def squared_gaussian(theta: np.ndarray) -> np.ndarray:
    """Copy of nonlinear parameters (n, 5) with the Gaussian broadening squared, as the refinement steps take it."""
    out = np.array(theta, float)
    out[:, 2] = out[:, 2] ** 2
    return out


def _sharp(magnitude: np.ndarray, hz_per_point: float, width_hz: float = 30.0) -> np.ndarray:
    """Magnitude spectra (..., points) less their running mean over `width_hz`: the narrow peaks, without
    the broad baseline, macromolecules and water tails that would steer a cross-correlation."""
    k = max(int(width_hz / hz_per_point) | 1, 3)
    smooth = uniform_filter1d(magnitude, k, axis=-1, mode="nearest")
    return np.maximum(magnitude - smooth, 0.0)


def lipid_lines(data: MRSData) -> tuple[list[str], np.ndarray]:
    """Broad lipid lines at 0.9 and 1.3 ppm (as LCModel's Lip09, Lip13), two widths each, on `data`'s grid."""
    t = data.time()
    names, fids = [], []
    for centre in LIPIDS:
        for width in LIPID_FWHM_HZ:
            names.append(f"Lip{round(centre * 10):02d}_{width:g}Hz")
            fids.append(5.0 * np.exp(2j * np.pi * (centre - WATER_PPM) * data.central_frequency_mhz * t - np.pi * width * t))
    return names, np.array(fids)


@single_threaded_blas
def water_area(water: MRSData) -> np.ndarray:
    """Area of the water peak of each reference FID, from a fit of its magnitude.

    The reference shares the scan's first-order phase, which shifts the FID by a fraction of a dwell
    time and so moves |FID(0)| (the spectrum's integral) by a few percent; taking it from the
    metabolite fit (phase1 sd ~0.5 deg/ppm at SNR 120) added ~1.3 % to every water-scaled
    concentration. The reference itself fixes it: |FID(t)| (eddy currents change only the phase) is
    fitted as A |FID of exp(-g t - s^2 t^2 + i 2 pi e t) turned by phase1|, with e from the spectrum's
    peak and A, phase1, g, s fitted; the area is A."""
    t = water.time()
    frequencies = np.fft.fftfreq(t.size, water.dwell_time_s)
    # phase1's offsets in the order of the unshifted FFT
    offset = np.fft.ifftshift(np.deg2rad(ppm_axis(t.size, water.dwell_time_s, water.central_frequency_mhz) - WATER_PPM))
    grid = np.arange(-20.0, 22.0, 2.0)  # deg/ppm, then +-1.5 around the best by 0.5
    areas = np.empty(water.n)
    for k, fid in enumerate(water.fid):
        magnitude = np.abs(fid)
        shift = frequencies[np.argmax(np.abs(np.fft.fft(fid)))]

        def shapes(phase1: np.ndarray, g: float, s: float) -> np.ndarray:
            unit = np.fft.fft(np.exp(-g * t - (s * t) ** 2 + 2j * np.pi * shift * t))
            return np.abs(np.fft.ifft(unit * np.exp(1j * np.multiply.outer(phase1, offset)), axis=-1))

        def residuals(m: np.ndarray) -> np.ndarray:
            return magnitude - (m @ magnitude / np.maximum(np.sum(m * m, axis=-1), 1e-300))[..., None] * m

        coarse = grid[np.argmin(np.sum(residuals(shapes(grid, 10.0, 10.0)) ** 2, axis=1))]
        fine = coarse + np.arange(-1.5, 2.0, 0.5)
        start = fine[np.argmin(np.sum(residuals(shapes(fine, 10.0, 10.0)) ** 2, axis=1))]
        params = least_squares(lambda x: residuals(shapes(x[0], x[1], x[2])), [start, 10.0, 10.0],
                               bounds=([-45.0, 0.0, 0.0], [45.0, 500.0, 500.0]), x_scale=[0.1, 1.0, 1.0]).x
        m = shapes(params[0], params[1], params[2])
        areas[k] = (magnitude @ m) / max(m @ m, 1e-300)
    return areas


def water_scale(water: MRSData, *, water_concentration: float = WATER_CONCENTRATION,
                relaxation: float = METABOLITE_RELAXATION) -> np.ndarray:
    """Factor from basis amplitude to mM per scan: water_concentration x relaxation / (area / 2 protons)."""
    return water_concentration * relaxation / (water_area(water) / WATER_PROTONS)


def fit_on_cluster(model: "LinearCombinationFit", data: MRSData, basis: Basis, client, *,
                   block: int = 8) -> "LinearCombinationFit":
    """`model.fit(data, basis)` as tasks of `block` spectra on the workers of a dask.distributed `client`
    (`speclearn.distributed.scheduler`): the same results, since every spectrum is fitted on its own;
    `seconds_per_spectrum_` is the wall time over the spectra."""
    from sklearn.base import clone
    start = time.perf_counter()
    shared = client.scatter(basis, broadcast=True)
    parts = client.gather(client.map(lambda part, b: clone(model).fit(part, b), data.blocks(block), b=shared,
                                     pure=False))
    model = parts[0]
    model.results_ = [result for part in parts for result in part.results_]
    model.ids_ = [i for part in parts for i in part.ids_]
    model.seconds_per_spectrum_ = (time.perf_counter() - start) / max(data.n, 1)
    return model


class LinearCombinationFit(BaseEstimator):
    """Fit each spectrum as a combination of basis spectra (see the module docstring)."""

    def __init__(self, ppm_range: tuple[float, float] = (0.2, 4.2), baseline_order: int = 3,
                 max_shift_hz: float = 15.0, shift_search_ppm: float = 0.5, max_nfev: int = 60, lipids: bool = True,
                 water_removal: bool = True):
        """max_shift_hz: how far the fit may move the shift from its start; shift_search_ppm: how far
        the start's cross-correlation search looks (0.5 ppm: 62 Hz at 3 T)."""
        store_params(self, locals())

    # --- model pieces ----------------------------------------------------------------------
    def _setup(self, basis: Basis, data: MRSData) -> None:
        basis = basis.matched(data)
        self.names_ = list(basis.names)
        self.basis_fid_ = basis.fid
        self.t_ = data.time()
        if self.lipids:
            names, fids = lipid_lines(data)
            self.names_ += names
            self.basis_fid_ = np.vstack([self.basis_fid_, fids])
        ppm = data.ppm()
        self.window_ = ppm_slice(ppm, *self.ppm_range)
        self.fft_index_ = np.fft.fftshift(np.arange(data.points))[self.window_]  # window of the unshifted FFT
        self.ppm_ = ppm[self.window_]
        self.dwell_ = data.dwell_time_s
        self.hz_per_ppm_ = data.central_frequency_mhz
        x = np.linspace(-1, 1, self.ppm_.size)
        legendre = np.polynomial.legendre.legvander(x, self.baseline_order)
        zeros = np.zeros_like(legendre)
        self.baseline_ = np.vstack([np.hstack([legendre, zeros]), np.hstack([zeros, legendre])])  # real-stacked
        q, _ = np.linalg.qr(self.baseline_)
        self.q_ = q

    def _basis_fids(self, theta: np.ndarray) -> np.ndarray:
        """Basis FIDs (m, points) shifted and broadened by theta's shift, Lorentzian and Gaussian."""
        t = self.t_
        return self.basis_fid_ * np.exp(-theta[1] * t - (theta[2] * t) ** 2 + 2j * np.pi * theta[0] * t)

    def _basis_spectra(self, theta: np.ndarray) -> np.ndarray:
        return self._windowed(self._basis_fids(theta)).T  # (window, m)

    def _phase(self, theta: np.ndarray) -> np.ndarray:
        return np.exp(1j * (theta[3] + theta[4] * (self.ppm_ - WATER_PPM)))

    @staticmethod
    def _stack(z: np.ndarray) -> np.ndarray:
        return np.concatenate([z.real, z.imag], axis=0)

    def _solve(self, theta: np.ndarray, y: np.ndarray,
               spectra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(amplitudes, baseline coefficients, real-stacked residual) for fixed nonlinear parameters
        (`spectra`: their `_basis_spectra`, when already computed)."""
        A = self._stack(self._basis_spectra(theta) if spectra is None else spectra)
        target = self._stack(y * self._phase(theta).conj())
        q = self.q_
        A_p = A - q @ (q.T @ A)
        y_p = target - q @ (q.T @ target)
        scale = np.linalg.norm(A_p, axis=0)
        scale[scale == 0] = 1.0
        a, _ = nnls(A_p / scale, y_p, maxiter=50 * A.shape[1])
        a = a / scale
        b = np.linalg.lstsq(self.baseline_, target - A @ a, rcond=None)[0]
        return a, b, target - A @ a - self.baseline_ @ b

    def _shift_candidates(self, y: np.ndarray) -> list[float]:
        """Shifts (Hz) that line up the magnitude of spectrum `y` (the fit window) with the summed basis
        spectrum's: first the best within +-`max_shift_hz`; then the three best matches of their
        narrow peaks (`_sharp`; the macromolecules left out) within +-`shift_search_ppm`, for offsets
        the first cannot reach."""
        theta = np.array([0.0, 10.0, 20.0, 0.0, 0.0])
        hz_per_point = 1.0 / (self.dwell_ * self.t_.size)
        near = np.arange(-int(self.max_shift_hz / hz_per_point), int(self.max_shift_hz / hz_per_point) + 1)
        window = np.abs(self._basis_spectra(theta).sum(axis=1))
        candidates = [float(near[np.argmax([np.dot(np.roll(window, k), np.abs(y)) for k in near])] * hz_per_point)]
        narrow_lines = [k for k, name in enumerate(self.names_) if name not in MACROMOLECULES]
        fids = self._basis_fids(theta)[narrow_lines].sum(axis=0)
        band = _sharp(np.abs(np.fft.fftshift(np.fft.fft(fids))), hz_per_point)
        reach = int(max(self.max_shift_hz, self.shift_search_ppm * self.hz_per_ppm_) / hz_per_point)
        start, stop = self.window_.start, self.window_.stop  # the window is a slice of the whole band
        lags = np.arange(-reach, reach + 1)
        lags = lags[(start - lags >= 0) & (stop - lags <= band.size)]
        score = np.stack([band[start - k:stop - k] for k in lags]) @ _sharp(np.abs(y), hz_per_point)
        padded = np.pad(score, 1, mode="edge")
        peaks = np.flatnonzero((score >= padded[:-2]) & (score >= padded[2:]))  # local maxima
        candidates += [float(lags[i] * hz_per_point) for i in peaks[np.argsort(-score[peaks])][:3]]
        return list(dict.fromkeys(candidates))

    def _phase_start(self, y: np.ndarray, shift: float) -> np.ndarray:
        """Start (n=5) at `shift` with the phase0 of a 30-degree grid that fits spectrum `y` best."""
        starts = [np.array([shift, 10.0, 20.0, phase, 0.0]) for phase in np.deg2rad(np.arange(0, 360, 30))]
        return min(starts, key=lambda theta: np.sum(self._solve(theta, y)[2] ** 2))

    @staticmethod
    def _far_off(squared_residual: np.ndarray | float, window: int, noise: np.ndarray | float) -> np.ndarray | bool:
        """Whether a fit's squared residual (over the 2 x `window` real values) is over twice the noise
        variance per value: a frequency offset beyond the starts' reach, for the wide shift search."""
        return squared_residual / (2 * window) > 2 * noise

    def _fit_from(self, y: np.ndarray, shift: float):
        """`least_squares` from `_phase_start`."""
        theta0 = self._phase_start(y, shift)
        lower = [theta0[0] - self.max_shift_hz, 0.0, 0.0, theta0[3] - 2 * np.pi, -np.deg2rad(20)]
        upper = [theta0[0] + self.max_shift_hz, 200.0, 200.0, theta0[3] + 2 * np.pi, np.deg2rad(20)]
        return least_squares(lambda th: self._solve(th, y)[2], theta0, bounds=(lower, upper),
                             x_scale=[1.0, 5.0, 5.0, 0.1, 0.01], diff_step=1e-4, max_nfev=self.max_nfev)

    def _fit_one(self, y: np.ndarray, noise_variance: float) -> dict:
        """Fit from the narrow search's shift; where that fit is `_far_off`, from the wide search's
        shifts too, keeping one that halves the residual (not a shifted basis fitting artefacts)."""
        narrow, *wide = self._shift_candidates(y)
        best = self._fit_from(y, narrow)  # .cost: half the squared residual
        if self._far_off(2 * best.cost, y.size, noise_variance):
            for shift in wide:
                fit = self._fit_from(y, shift)
                best = fit if fit.cost < 0.5 * best.cost else best
        return self._result(best.x, y)

    def _result(self, theta: np.ndarray, y: np.ndarray, fids: np.ndarray | None = None,
                spectra: np.ndarray | None = None) -> dict:
        """Amplitudes (NNLS), baseline, CRLB covariance at the nonlinear parameters `theta` (`fids`, `spectra`:
        its basis FIDs and their windowed spectra (m, window), when the refinement steps have them)."""
        if fids is None:
            fids = self._basis_fids(theta)
            spectra = self._windowed(fids)
        spectra = spectra.T  # (window, m)
        a, b, residual = self._solve(theta, y, spectra)
        covariance, sigma2 = self._crlb(theta, fids, spectra, a, b, residual)
        return {"theta": theta, "amplitudes": a, "baseline": b, "covariance": covariance, "sigma2": sigma2,
                "residual": residual}

    def _windowed(self, fids: np.ndarray) -> np.ndarray:
        """Window of the spectra of FIDs (..., points); scipy's FFT keeps single precision (numpy's
        is 5x slower on complex64) and matches numpy's bit for bit on complex128."""
        return scipy.fft.fft(fids, axis=-1)[..., self.fft_index_]

    def _gauss_newton(self, y: np.ndarray, theta: np.ndarray, iterations: int,
                      prior_sd: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Levenberg-Marquardt on the nonlinear parameters of many spectra at once (rows of y, theta),
        amplitudes and baseline by unconstrained least squares under each step (variable projection,
        Kaufman's Jacobian); analytic derivatives of the basis spectra; at most `iterations` steps, a
        spectrum's last once its step is below `STEP_TOLERANCE` or promises to lower its chi-square by
        less than `MIN_CHI2_DROP`. prior_sd (5,): a Gaussian prior on the parameters
        centred on the start (sd in the parameters of the steps: the Gaussian squared), weighed
        against the residual by its variance (MAP). Returns (theta, residual cost, basis FIDs (n, m, points) in
        single precision at theta, their windowed spectra (n, m, window))."""
        theta = squared_gaussian(theta)  # the Gaussian enters as its square: no dead gradient at 0
        centre = theta.copy()
        weight = np.zeros(5) if prior_sd is None else 1.0 / np.asarray(prior_sd, float) ** 2
        # the bounds of `_fit_one`
        lower = np.column_stack([theta[:, 0] - self.max_shift_hz] + [np.full(len(theta), v) for v in
                                                                     (0.0, 0.0, -np.inf, -np.deg2rad(20))])
        upper = np.column_stack([theta[:, 0] + self.max_shift_hz] + [np.full(len(theta), v) for v in
                                                                     (200.0, 200.0 ** 2, np.inf, np.deg2rad(20))])
        theta = np.clip(theta, lower, upper)
        t, m = self.t_, self.basis_fid_.shape[0]
        offset = self.ppm_ - WATER_PPM
        stack = lambda z: np.concatenate([z.real, z.imag], axis=-1)  # noqa: E731  (..., L) -> (..., 2L)

        basis = self.basis_fid_.astype(np.complex64)  # single precision: half the FFT time of the steps
        # d/d(shift, Lorentzian, squared Gaussian) of the FID
        weights = np.stack([2j * np.pi * t, -t, -t ** 2]).astype(np.complex64)

        def design(th, spectra):
            f = np.exp(-th[:, 1:2] * t - th[:, 2:3] * t ** 2 + 2j * np.pi * th[:, 0:1] * t).astype(np.complex64)
            fids = basis[None] * f[:, None]
            windowed = self._windowed(fids)
            columns = np.concatenate([stack(windowed).transpose(0, 2, 1),
                                      np.broadcast_to(self.baseline_, (len(th),) + self.baseline_.shape)], axis=2)
            target = spectra * np.exp(-1j * (th[:, 3:4] + th[:, 4:5] * offset))
            return fids, windowed, columns, target

        def solve(columns, target):
            """Least squares, then again without the basis spectra that came out negative (one
            active-set pass toward NNLS); returns the columns used (dropped ones zeroed)."""
            gram, rhs = columns.transpose(0, 2, 1) @ columns, np.einsum("npk,np->nk", columns, stack(target))

            def least_squares_(keep):
                kept = gram * (keep[:, :, None] & keep[:, None, :])
                scale = np.sqrt(np.maximum(np.einsum("nii->ni", kept), 1e-30))
                kept = kept / scale[:, :, None] / scale[:, None, :] + 1e-10 * np.eye(kept.shape[1])
                return np.linalg.solve(kept, (rhs * keep / scale)[..., None])[..., 0] / scale, kept, scale

            keep = np.ones(rhs.shape, bool)
            keep[:, :m] = least_squares_(keep)[0][:, :m] >= 0
            coef, kept, scale = least_squares_(keep)
            columns = columns * keep[:, None, :]
            return coef, stack(target) - np.einsum("npk,nk->np", columns, coef), kept, scale, columns

        fids, windowed, columns, target = design(theta, y)
        coef, residual, gram, scale, columns = solve(columns, target)
        cost = np.sum(residual ** 2, axis=1)
        damping = np.full(len(y), 1e-3)
        done = np.zeros(len(y), bool)
        dof = max(residual.shape[1] - columns.shape[2] - 5, 1)
        penalty = lambda th, variance, centre: variance * np.sum(weight * (th - centre) ** 2, axis=1)  # noqa: E731
        for _ in range(iterations):
            variance = cost / dof
            combined = (coef[:, None, :m].astype(np.complex64) @ fids)[:, 0]
            derivs = -stack(self._windowed(combined[:, None] * weights))  # (n, 3, 2L)
            J = np.concatenate([derivs, stack(-1j * target[:, None]), stack(-1j * offset * target[:, None])],
                               axis=1).transpose(0, 2, 1)
            # project J onto the complement of the linear columns
            proj = np.linalg.solve(gram, (columns.transpose(0, 2, 1) @ J) / scale[:, :, None]) / scale[:, :, None]
            J = J - columns @ proj
            H = J.transpose(0, 2, 1) @ J + variance[:, None, None] * np.diag(weight)
            g = np.einsum("npk,np->nk", J, residual) + variance[:, None] * weight * (theta - centre)
            diag = np.maximum(np.einsum("nii->ni", H), 1e-30)
            step = -np.linalg.solve(H + damping[:, None, None] * diag[:, :, None] * np.eye(5), g[..., None])[..., 0]
            # a spectrum is done once its step is tiny or would lower its chi-square by < MIN_CHI2_DROP
            done |= np.all(np.abs(step) <= STEP_TOLERANCE, axis=1) | (-np.sum(g * step, axis=1) < MIN_CHI2_DROP * variance)
            go = np.flatnonzero(~done)
            if go.size == 0:
                break
            trial = np.clip(theta[go] + step[go], lower[go], upper[go])
            t_fids, t_windowed, t_columns, t_target = design(trial, y[go])
            t_coef, t_residual, t_gram, t_scale, t_columns = solve(t_columns, t_target)
            t_cost = np.sum(t_residual ** 2, axis=1)
            better = t_cost + penalty(trial, variance[go], centre[go]) < cost[go] + penalty(theta[go], variance[go], centre[go])
            damping[go] = np.where(better, damping[go] * 0.3, damping[go] * 10)
            if better.all() and go.size == len(y):
                theta, cost, fids, windowed, columns, target = trial, t_cost, t_fids, t_windowed, t_columns, t_target
                coef, residual, gram, scale = t_coef, t_residual, t_gram, t_scale
            else:
                rows = go[better]
                theta[rows], cost[rows] = trial[better], t_cost[better]
                fids[rows], windowed[rows] = t_fids[better], t_windowed[better]
                columns[rows], target[rows] = t_columns[better], t_target[better]
                coef[rows], residual[rows] = t_coef[better], t_residual[better]
                gram[rows], scale[rows] = t_gram[better], t_scale[better]
        # (phase0 + pi, -amplitudes) fits as well: keep the solution with mostly positive amplitudes
        theta[np.sum(coef[:, :m] * scale[:, :m], axis=1) < 0, 3] += np.pi
        theta[:, 2] = np.sqrt(theta[:, 2])
        return theta, cost, fids, windowed

    def _refined_results(self, y: np.ndarray, starts: np.ndarray, iterations: int,
                         prior_sd: np.ndarray | None, noise: np.ndarray) -> list[dict]:
        """`_result` of each spectrum (rows of y) at the end of `_gauss_newton` from starts[0]; a later
        start (a fallback, no prior) is refined too for the spectra whose end point fits worse than
        that start does unrefined, and the better end point is kept. Where the end point is still
        `_far_off` (`noise`: the variance per value), the wide search's shifts (`_shift_candidates`)
        start refinements too, kept where they halve the residual."""
        theta, cost, fids, windowed = self._gauss_newton(y, starts[0], iterations, prior_sd)
        best = np.zeros(len(y), int)
        for k, fallback in enumerate(starts[1:], start=1):
            redo = np.flatnonzero(cost > self._gauss_newton(y, fallback, 0)[1])
            if redo.size:
                end, end_cost, end_fids, end_windowed = self._gauss_newton(y[redo], fallback[redo], iterations)
                better = end_cost < cost[redo]
                rows = redo[better]
                theta[rows], cost[rows], best[rows] = end[better], end_cost[better], k
                fids[rows], windowed[rows] = end_fids[better], end_windowed[better]
        for i in np.flatnonzero(self._far_off(cost, y.shape[1], noise)):
            for shift in self._shift_candidates(y[i])[1:]:
                start = self._phase_start(y[i], shift)[None]
                end, end_cost, end_fids, end_windowed = self._gauss_newton(y[i:i + 1], start, iterations)
                if end_cost[0] < 0.5 * cost[i]:  # a far better fit, not a shifted basis fitting artefacts
                    theta[i], cost[i], best[i], fids[i], windowed[i] = end[0], end_cost[0], len(starts), end_fids[0], end_windowed[0]
        return [self._result(theta[i], row, fids[i], windowed[i]) | {"start": int(best[i])} for i, row in enumerate(y)]

    def _crlb(self, theta, fids, spectra, a, b, residual) -> tuple[np.ndarray, float]:
        """Covariance (Fisher inverse) of the amplitudes, and the noise variance; analytic Jacobian of
        the model in amplitudes, baseline and the five nonlinear parameters (at basis FIDs `fids` and
        their windowed `spectra`)."""
        t, offset = self.t_, self.ppm_ - WATER_PPM
        complex_baseline = self.baseline_[:self.ppm_.size] + 1j * self.baseline_[self.ppm_.size:]
        inner = spectra @ a + complex_baseline @ b
        combined = a @ fids
        derivatives = list(self._windowed(combined * np.stack([2j * np.pi * t, -t, -2 * theta[2] * t ** 2])))
        derivatives += [1j * inner, 1j * offset * inner]
        phase = self._phase(theta)[:, None]
        J = self._stack(np.hstack([spectra, complex_baseline, np.stack(derivatives, axis=1)]) * phase)
        dof = max(J.shape[0] - J.shape[1], 1)
        sigma2 = float(residual @ residual / dof)
        scale = np.maximum(np.linalg.norm(J, axis=0), 1e-300)
        fisher = (J / scale).T @ (J / scale)  # unit diagonal: Cholesky unless (nearly) singular
        try:
            inverse = cho_solve(cho_factor(fisher), np.eye(len(fisher))[:, :len(a)])[:len(a)]
        except np.linalg.LinAlgError:
            inverse = np.linalg.pinv(fisher)[:len(a), :len(a)]
        covariance = sigma2 * inverse / np.outer(scale[:len(a)], scale[:len(a)])
        return covariance, sigma2

    # --- public API ---------------------------------------------------------------------------
    @single_threaded_blas
    def fit(self, data: MRSData, basis: Basis, *, initial: np.ndarray | None = None,
            iterations: int = 6, prior_sd: np.ndarray | None = None) -> "LinearCombinationFit":
        """Fit every row of `data` (average transients first: `data.average()`).

        initial: (n, 5) starting nonlinear parameters (shift Hz, Lorentzian 1/s, Gaussian 1/s, phase0 rad,
        phase1 rad/ppm), e.g. from a network, or (starts, n, 5): then `iterations` batched
        Levenberg-Marquardt steps from the first start replace the per-spectrum search and
        `least_squares`; a later start (a fallback) is refined too for the spectra whose refined fit
        is still worse than the fallback's unrefined one, and the better end point is kept; a fit
        still far off (`_refined_results`) is retried from the wide shift search. Each result's
        "start": the index of the start it ended from, len(starts) for the wide search."""
        self._setup(basis, data)
        start = time.perf_counter()
        if self.water_removal:
            data = hlsvd_water_removal(data)
        y = data.spectrum()[:, self.window_]
        noise = edge_noise_power(data.fid) / 2  # variance per real value of a spectral point
        if initial is None:
            self.results_ = [self._fit_one(row, variance) for row, variance in zip(y, noise)]
        else:
            initial = np.asarray(initial, float)
            initial = initial[None] if initial.ndim == 2 else initial
            if initial.shape[1:] != (data.n, len(NONLINEAR)):
                raise InputError(f"initial parameters of shape {initial.shape}; expected ({data.n}, {len(NONLINEAR)})")
            self.results_ = [result for k in range(0, data.n, 64)  # blocks of 64 spectra
                             for result in self._refined_results(y[k:k + 64], initial[:, k:k + 64], iterations,
                                                                 prior_sd, noise[k:k + 64])]
        self.seconds_per_spectrum_ = (time.perf_counter() - start) / max(data.n, 1)
        self.ids_ = list(data.ids)
        return self

    def amplitudes(self) -> pd.DataFrame:
        return pd.DataFrame([r["amplitudes"] for r in self.results_], columns=self.names_,
                            index=pd.Index(self.ids_, name="id"))

    def nuisance(self) -> pd.DataFrame:
        theta = np.array([r["theta"] for r in self.results_])
        table = pd.DataFrame(theta, columns=list(NONLINEAR), index=pd.Index(self.ids_, name="id"))
        table["phase0"] = np.rad2deg(table["phase0"])
        table["phase1"] = np.rad2deg(table["phase1"])
        table = table.rename(columns={"phase0": "phase0_deg", "phase1": "phase1_deg_per_ppm",
                                      "lorentzian": "lorentzian_per_s", "gaussian": "gaussian_per_s"})
        table["noise_sd"] = [np.sqrt(r["sigma2"]) for r in self.results_]
        return table

    def _totals_weights(self) -> tuple[list[str], np.ndarray]:
        """(names + totals of `COMBINED`, weights (k, m) from the amplitudes to them)."""
        totals = [t for t, parts in COMBINED.items() if all(p in self.names_ for p in parts)]
        weights = np.vstack([np.eye(len(self.names_))] + [np.isin(self.names_, COMBINED[t]).astype(float)[None]
                                                          for t in totals])
        return self.names_ + totals, weights

    def amplitude_table(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(amplitudes, CRLBs) per basis name and total, in basis units (id x names)."""
        names, weights = self._totals_weights()
        values = np.array([weights @ r["amplitudes"] for r in self.results_])
        sd = np.sqrt(np.clip(np.array([np.diag(weights @ r["covariance"] @ weights.T) for r in self.results_]),
                             0, None))
        index = pd.Index(self.ids_, name="id")
        return pd.DataFrame(values, columns=names, index=index), pd.DataFrame(sd, columns=names, index=index)

    def unit_factor(self, water: MRSData | None = None) -> tuple[np.ndarray, str]:
        """(factor per spectrum from basis units to the reported unit, unit): mM with `water` (one
        reference per scan or one for all), else ratio to tCr."""
        if water is not None:
            if water.n not in (1, len(self.results_)):
                raise InputError(f"{water.n} water references for {len(self.results_)} spectra", file=water.source)
            factor = water_scale(water)
            return np.broadcast_to(factor, (len(self.results_),)).astype(float), "mM"
        if "Cr" not in self.names_ or "PCr" not in self.names_:
            raise InputError("ratios to total creatine need Cr and PCr in the basis; give a water reference")
        total = np.array([r["amplitudes"] for r in self.results_]) @ np.isin(self.names_, COMBINED["tCr"])
        with np.errstate(divide="ignore"):
            return np.where(total > 0, 1.0 / total, np.nan), "ratio to tCr"

    def concentrations(self, water: MRSData | None = None) -> tuple[pd.DataFrame, str]:
        """(table id x [names, totals, <name>_sd], unit): mM with `water` (one reference per scan or
        one for all), else ratio to tCr. sd columns are the CRLBs in the same unit (for ratios by the
        delta method)."""
        values, sd = self.amplitude_table()
        factor, unit = self.unit_factor(water)
        if water is None:  # delta method for v / T with T = tCr
            names, weights = self._totals_weights()
            tcr = np.isin(self.names_, COMBINED["tCr"]).astype(float)
            for k, result in enumerate(self.results_):
                grad = weights * factor[k] - np.outer(values.iloc[k].to_numpy(), tcr) * factor[k] ** 2
                sd.iloc[k] = np.sqrt(np.clip(np.diag(grad @ result["covariance"] @ grad.T), 0, None))
        else:
            sd = sd.mul(factor, axis=0)
        values = values.mul(factor, axis=0)
        return pd.concat([values, sd.add_suffix("_sd")], axis=1), unit
