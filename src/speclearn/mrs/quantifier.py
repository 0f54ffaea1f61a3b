"""Deep-learning metabolite quantifier: a 1-D CNN encoder with a physics-model decoder (the basis model).

The encoder reads the complex spectrum (0.2-4.2 ppm, divided by its RMS magnitude). Two methods:

- varpro (default): the encoder gives only the nuisance parameters of the linear-combination model
  (shift, Lorentzian and Gaussian broadening, zero/first-order phase); the amplitudes (and a cubic
  complex baseline) are the least-squares solution of the basis model under it (variable projection
  inside the network, differentiable: the decoder renders the basis spectra with one FFT per spectrum),
  and the network trains on the residual (no labels needed; with targets, plus the error of those
  least-squares amplitudes, which pins the nuisance without teaching any amplitude). At prediction the
  network's nuisance starts `refine` batched Levenberg-Marquardt steps of the linear-combination model
  (`LinearCombinationFit` with `initial`; a fixed start is refined too where the network's end point
  fits worse than that start does unrefined, and the better end point is kept), amplitudes by NNLS,
  under a Gaussian prior centred on the network's estimate (`nuisance_prior`: the network's bias and
  spread against the refined fit, measured at training on the held-out spectra; a MAP estimate),
  with Cramer-Rao bounds. No amplitude is learned, so none is pulled toward a training mean, and
  concentrations beyond the training range are recovered.
- supervised: the encoder regresses the amplitudes (softplus; mean squared error, each divided by its
  training mean), targets from the simulator (mM; amplitude = mM / 1.206, the challenge convention).

An amplitude head trained by reconstruction (self-supervised, or with the supervised loss) was measured
and removed: at 1,500 training spectra and 10 epochs its median errors were 14.6/14.0/12.9 % (with
targets) and 91/64/68 % (without) at SNR 15/40/120, against 13.6/7.1/3.0 % for varpro.

Intervals: split conformal prediction (scaled score) on a held-out share of the labelled training
spectra, around the MC-dropout spread (supervised) or the CRLB (varpro; totals calibrated on their
own, with the CRLB from the covariance). Targets are mM in the simulator's convention (basis
amplitude = mM / 1.206). Units as the LCM: mM with a water reference, else ratio to tCr.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.models.device import resolve_device
from speclearn.models.estimator import SpectralEstimator
from speclearn.models.persistence import SavedModel
from speclearn.models.training import TrainingConfig, load_module_arrays, module_arrays, predict_batches, train
from speclearn.mrs.basis import COMBINED, Basis, combine
from speclearn.mrs.data import WATER_PPM, MRSData, ppm_slice
from speclearn.mrs.lcm import LinearCombinationFit, lipid_lines, squared_gaussian, water_scale
from speclearn.mrs.preprocess import hlsvd_water_removal
from speclearn.mrs.networks import Encoder, enable_dropout, window_input
from speclearn.mrs.simulate import METABOLITE_RELAXATION
from speclearn.models.conformal import SplitConformal, check_level

METHODS = ("varpro", "supervised")
N_NUISANCE = 6  # shift, lorentzian, gaussian, cos phase0, sin phase0, phase1
BASELINE_ORDER = 3
#: varpro with targets: weight of the amplitude error (relative to the training mean) beside the residual
VARPRO_AMPLITUDE_WEIGHT = 0.1
#: second start of the refinement (shift Hz, Lorentzian 1/s, Gaussian 1/s, phase0 rad, phase1 rad/ppm)
DEFAULT_START = np.array([0.0, 10.0, 20.0, 0.0, 0.0])
#: held-out spectra needed to estimate the network's nuisance bias and spread (its prior)
MIN_PRIOR_SPECTRA = 20


class PhysicsDecoder(nn.Module):
    """The LCM's basis model in the window (real/imag channels) under a batch of nuisance parameters."""

    def __init__(self, basis_fid: np.ndarray, dwell_time_s: float, window: slice, ppm: np.ndarray):
        super().__init__()
        self.register_buffer("basis_re", torch.tensor(basis_fid.real, dtype=torch.float32))
        self.register_buffer("basis_im", torch.tensor(basis_fid.imag, dtype=torch.float32))
        self.register_buffer("t", torch.arange(basis_fid.shape[1], dtype=torch.float32) * dwell_time_s)
        self.register_buffer("ppm", torch.tensor(ppm - WATER_PPM, dtype=torch.float32))
        x = np.linspace(-1, 1, ppm.size)
        legendre = np.polynomial.legendre.legvander(x, BASELINE_ORDER).T
        self.register_buffer("legendre", torch.tensor(legendre, dtype=torch.float32))
        self.start, self.stop = window.start, window.stop

    def _phase(self, nuisance: torch.Tensor) -> torch.Tensor:
        angle = torch.atan2(nuisance[:, 4:5], nuisance[:, 3:4]) + nuisance[:, 5:6] * self.ppm[None]
        return torch.polar(torch.ones_like(angle), angle)

    def _rotation(self, nuisance: torch.Tensor) -> torch.Tensor:
        t = self.t[None]
        damping = torch.exp(-nuisance[:, 1:2] * t - (nuisance[:, 2:3] * t) ** 2)
        return torch.polar(damping, 2 * np.pi * nuisance[:, 0:1] * t)

    def solve(self, nuisance: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Variable projection: (amplitudes, model) by least squares of x on the basis spectra under
        `nuisance` plus the baseline polynomials (differentiable; amplitudes may be negative)."""
        basis = torch.complex(self.basis_re, self.basis_im)
        spectra = torch.fft.fftshift(torch.fft.fft(basis[None] * self._rotation(nuisance)[:, None], dim=2),
                                     dim=2)[:, :, self.start:self.stop] * self._phase(nuisance)[:, None]
        columns = torch.cat([spectra.real, spectra.imag], dim=2).transpose(1, 2)  # (n, 2L, m)
        k, length = self.legendre.shape
        zeros = torch.zeros_like(self.legendre)
        baseline = torch.cat([torch.cat([self.legendre, zeros], 1), torch.cat([zeros, self.legendre], 1)], 0).T
        design = torch.cat([columns, baseline[None].expand(len(x), -1, -1)], dim=2)
        norms = design.norm(dim=1, keepdim=True).clamp_min(1e-12)
        scaled = design / norms
        y = torch.cat([x[:, 0], x[:, 1]], dim=1)[..., None]
        gram = scaled.transpose(1, 2) @ scaled
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)[None]
        coef = torch.linalg.solve(gram + 1e-6 * eye, scaled.transpose(1, 2) @ y)
        fitted = (scaled @ coef)[..., 0]
        amplitudes = (coef[..., 0] / norms[:, 0])[:, :columns.shape[2]]
        return amplitudes, torch.stack([fitted[:, :length], fitted[:, length:]], dim=1)


class QuantifierNet(nn.Module):
    def __init__(self, n_basis: int, decoder: PhysicsDecoder, dropout: float = 0.1, varpro: bool = False):
        super().__init__()
        self.n_basis = n_basis
        self.varpro = varpro
        self.encoder = Encoder(2, n_basis + N_NUISANCE, width=48, dropout=dropout)
        self.decoder = decoder
        self.register_buffer("amplitude_scale", torch.ones(n_basis))

    def nuisance(self, out: torch.Tensor) -> torch.Tensor:
        """shift (Hz), Lorentzian (1/s), Gaussian (1/s), cos/sin phase0, phase1 (rad/ppm) from the head."""
        raw = out[:, self.n_basis:self.n_basis + N_NUISANCE]
        return torch.cat([20 * torch.tanh(raw[:, 0:1]), 60 * torch.sigmoid(raw[:, 1:2]),
                          80 * torch.sigmoid(raw[:, 2:3]), raw[:, 3:5] + raw.new_tensor([[1.0, 0.0]]),
                          0.35 * torch.tanh(raw[:, 5:6])], dim=1)

    def amplitudes(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Basis amplitudes from the head's output: softplus (supervised) or, varpro, least squares under
        the nuisance."""
        if self.varpro:
            return self.decoder.solve(self.nuisance(out), x)[0]
        return nn.functional.softplus(out[:, :self.n_basis]) * self.amplitude_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitudes(self.encoder(x), x)


class DLQuantifier(SpectralEstimator):
    """CNN encoder + physics decoder (see the module docstring)."""

    system, method = "mrs", "dl-quantifier"

    def __init__(self, method: str = "varpro", ppm_range: tuple[float, float] = (0.2, 4.2), epochs: int = 80,
                 learning_rate: float = 1e-3, batch_size: int = 64, dropout: float = 0.1, mc_samples: int = 20,
                 calibration_fraction: float = 0.2, water_removal: bool = False,
                 patience: int = 15, max_seconds: float | None = None, refine: int = 4, nuisance_prior: bool = True,
                 seed: int = 0, device: str = "auto"):
        # refine: at most 4 Levenberg-Marquardt steps; 6 gave the same errors and took ~1 ms more per spectrum
        # (docs/notes/mrs_speed.md)
        store_params(self, locals())

    def _input(self, data: MRSData) -> tuple[np.ndarray, np.ndarray]:
        if self.water_removal:
            data = hlsvd_water_removal(data)
        return window_input(data, self.ppm_range)

    def _build(self, basis: Basis, data: MRSData) -> QuantifierNet:
        ppm = data.ppm()
        window = ppm_slice(ppm, *self.ppm_range)
        decoder = PhysicsDecoder(basis.fid, data.dwell_time_s, window, ppm[window])
        return QuantifierNet(len(basis.names), decoder, self.dropout, varpro=self.method == "varpro")

    def fit(self, data: MRSData, basis: Basis, targets: pd.DataFrame | None = None, *,
            water: MRSData | None = None) -> "DLQuantifier":
        """data: one averaged spectrum per row; targets: mM per basis name, rows matching data.ids;
        water (varpro): references of the spectra, so that the conformal calibration is done in mM and
        includes the error of the water scaling."""
        if self.method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "supervised" and targets is None:
            raise InputError("method 'supervised' needs --targets (or use --method varpro)")
        basis = basis.matched(data)
        if self.method == "varpro":  # the LCM's lipid lines join the basis
            names, fids = lipid_lines(data)
            basis = Basis(list(basis.names) + names, np.vstack([basis.fid, fids]), basis.dwell_time_s,
                          basis.central_frequency_mhz, basis.te_ms, basis.source)
        self.names_ = list(basis.names)
        self.axis_ = data.acquisition()
        self.basis_fid_ = basis.fid.astype(np.complex64)
        x, scale = self._input(data)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(data.n)
        if targets is not None:
            missing = [n for n in self.names_ if n not in targets.columns and not n.startswith("Lip")]
            if missing:
                raise InputError(f"targets lack columns {', '.join(missing)}")
            rows = targets.index.astype(str).get_indexer(pd.Index(data.ids))
            if (rows < 0).any():
                raise InputError(f"no target row for spectrum {data.ids[int(np.flatnonzero(rows < 0)[0])]!r}")
            y = targets.iloc[rows].reindex(columns=self.names_).fillna(0.0).to_numpy(float) \
                / METABOLITE_RELAXATION / scale[:, None]
        else:
            y = np.zeros((data.n, len(self.names_)))
        n_cal = max(int(round(self.calibration_fraction * data.n)), 2) \
            if targets is not None and self.calibration_fraction > 0 else 0
        n_val = max(data.n // 10, 2)
        cal, val, fit_rows = order[:n_cal], order[n_cal:n_cal + n_val], order[n_cal + n_val:]
        torch.manual_seed(self.seed)  # initial weights follow the estimator's seed
        self.net_ = self._build(basis, data)
        mean = y[fit_rows].mean(axis=0) if targets is not None else np.abs(x).mean() * np.ones(len(self.names_))
        self.net_.amplitude_scale.copy_(torch.tensor(np.maximum(mean, 1e-6), dtype=torch.float32))
        device = resolve_device(self.device)
        weight = torch.tensor(np.where(mean > 0, 1.0 / np.maximum(mean, 1e-6), 0.0), dtype=torch.float32,
                              device=device)

        def loss_fn(net, batch):
            if net.varpro:  # residual of the least-squares fit under the predicted nuisance
                nuisance = net.nuisance(net.encoder(batch[0]))
                amplitudes, fitted = net.decoder.solve(nuisance, batch[0])
                loss = torch.mean((fitted - batch[0]) ** 2)
                if targets is not None:  # and the error of the least-squares amplitudes: pins the nuisance
                    loss = loss + VARPRO_AMPLITUDE_WEIGHT * torch.mean(((amplitudes - batch[1]) * weight) ** 2)
                return loss
            return torch.mean(((net(batch[0]) - batch[1]) * weight) ** 2)

        tensors = [torch.from_numpy(x), torch.tensor(y, dtype=torch.float32)]
        config = TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                patience=self.patience, max_seconds=self.max_seconds, seed=self.seed, progress=False)
        self.history_ = train(self.net_, loss_fn, [t[fit_rows] for t in tensors], [t[val] for t in tensors], config,
                              device=device, description="DL quantifier")
        self.net_.cpu()
        self.conformal_ = None
        self.nuisance_bias_, self.prior_sd_ = np.zeros(len(DEFAULT_START)), None
        if self.method == "varpro" and self.nuisance_prior and len(val) >= MIN_PRIOR_SPECTRA:
            self.nuisance_bias_, self.prior_sd_ = self._nuisance_prior(data.select(val))
        if n_cal and self.method == "varpro":
            lcm = self.refined(data.select(cal))[1]
            values, sd = lcm.amplitude_table()
            truth = combine({name: y[cal, k] * scale[cal] for k, name in enumerate(self.names_)})
            truth = np.column_stack([truth[c] for c in values.columns])
            if water is not None:
                reference = water.select(cal) if water.n == data.n else water
                factor = lcm.unit_factor(reference)[0][:, None]
                values, sd, truth = values * factor, sd * factor, truth * METABOLITE_RELAXATION
            self.conformal_ = SplitConformal("scaled", bins=3).calibrate(truth, values.to_numpy(), sd.to_numpy())
        elif n_cal:
            mean_a, sd_a = self._amplitudes(x[cal])
            self.conformal_ = SplitConformal("scaled", bins=3).calibrate(y[cal], mean_a, sd_a)
        return self

    def _amplitudes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MC-dropout mean and sd of the normalised amplitudes."""
        net = self.net_.to(resolve_device(self.device))
        try:
            with torch.no_grad():
                tensor = torch.from_numpy(x).to(net.amplitude_scale.device)
                if self.mc_samples > 1 and self.dropout > 0:
                    enable_dropout(net)
                    # dropout only acts in the head: run the convolutional features once
                    features = net.encoder.features(tensor)
                    draws = np.stack([net.amplitudes(net.encoder.head(features), tensor).cpu().numpy()
                                      for _ in range(self.mc_samples)])
                    return draws.mean(axis=0), draws.std(axis=0)
                net.eval()
                mean = net(tensor).cpu().numpy()
                return mean, np.zeros_like(mean)
        finally:
            net.eval().cpu()

    def _nuisance_prior(self, data: MRSData) -> tuple[np.ndarray, np.ndarray]:
        """(median, robust sd) of the network's nuisance minus the refined fit's on held-out spectra, in the
        parameters of the Levenberg-Marquardt steps (Gaussian squared; phase0 wrapped)."""
        start, lcm = self.refined(data)
        end = np.array([r["theta"] for r in lcm.results_])
        difference = squared_gaussian(start) - squared_gaussian(end)
        difference[:, 3] = np.angle(np.exp(1j * difference[:, 3]))
        bias = np.median(difference, axis=0)
        return bias, np.maximum(1.4826 * np.median(np.abs(difference - bias), axis=0), 1e-6)

    def refined(self, data: MRSData) -> tuple[np.ndarray, LinearCombinationFit]:
        """varpro: (network nuisance (n, 5) as the LCM's parameters, less its bias on held-out spectra; the
        LCM refined from it under the network's prior (`nuisance_prior`), with `DEFAULT_START` as the
        fallback start of `LinearCombinationFit.fit`)."""
        x = self._input(data)[0]
        self.net_.eval()
        nuisance = predict_batches(lambda b: self.net_.nuisance(self.net_.encoder(b)), x, batch_size=max(len(x), 1),
                                   device=resolve_device(self.device), modules=(self.net_,)).astype(float)
        theta = np.column_stack([nuisance[:, :3], np.arctan2(nuisance[:, 4], nuisance[:, 3]), nuisance[:, 5]])
        theta = squared_gaussian(theta) - self.nuisance_bias_
        theta[:, 1:3] = np.maximum(theta[:, 1:3], 0.0)
        theta[:, 2] = np.sqrt(theta[:, 2])
        acquisition = self.axis_
        basis = Basis(self.names_, self.basis_fid_, acquisition["dwell_time_s"], acquisition["central_frequency_mhz"])
        lcm = LinearCombinationFit(ppm_range=self.ppm_range, lipids=False)
        starts = np.stack([theta, np.broadcast_to(DEFAULT_START, theta.shape)])
        return theta, lcm.fit(data, basis, initial=starts, iterations=self.refine, prior_sd=self.prior_sd_)

    def _predict_varpro(self, data: MRSData, water: MRSData | None,
                        interval: float | None) -> tuple[pd.DataFrame, str]:
        lcm = self.refined(data)[1]
        values, crlb = lcm.amplitude_table()
        factor, unit = lcm.unit_factor(water)
        names, v, sd = list(values.columns), values.to_numpy(), crlb.to_numpy()
        blocks, columns = [v], names + [f"{c}_sd" for c in names]
        if self.conformal_ is not None:  # calibrated sd: the conformal 68.3 % half-width
            sd = self.conformal_.interval(v, 0.683, sd)[1] - v
            if interval is not None:
                blocks += self.conformal_.interval(v, interval, crlb.to_numpy())
                columns += [f"{c}_lo" for c in names] + [f"{c}_hi" for c in names]
        blocks.insert(1, sd)
        return pd.DataFrame(np.hstack(blocks) * factor[:, None], columns=columns, index=values.index), unit

    def predict(self, data: MRSData, *, water: MRSData | None = None,
                interval: float | None = None) -> tuple[pd.DataFrame, str]:
        """(table id x [names, totals, <name>_sd, and <name>_lo/_hi with `interval`], unit)."""
        data.check_acquisition(self.axis_, what="the MRS quantifier")
        if interval is not None:
            check_level(interval)
            if self.conformal_ is None:
                raise InputError("this model has no conformal calibration (trained without targets); "
                                 "intervals need a model trained with --targets")
        if self.method == "varpro":
            return self._predict_varpro(data, water, interval)
        torch.manual_seed(self.seed)  # the MC-dropout draws
        x, scale = self._input(data)
        mean, spread = self._amplitudes(x)
        sd, lo, hi = spread, None, None
        if self.conformal_ is not None:  # calibrated sd: the conformal 68.3 % half-width
            sd = self.conformal_.interval(mean, 0.683, spread)[1] - mean
            if interval is not None:
                lo, hi = self.conformal_.interval(mean, interval, spread)
        return to_concentrations(self.names_, mean * scale[:, None], sd * scale[:, None], data.ids, water,
                                 lo=None if lo is None else lo * scale[:, None],
                                 hi=None if hi is None else hi * scale[:, None])

    def predict_on_cluster(self, data: MRSData, client, *, water: MRSData | None = None,
                           interval: float | None = None, block: int = 64) -> tuple[pd.DataFrame, str]:
        """`predict` as tasks of `block` spectra (and their water references) on the workers of a
        dask.distributed `client`: the same table, since every spectrum is refined on its own."""
        parts = data.blocks(block)
        references = water.blocks(block) if water is not None and water.n == data.n else [water] * len(parts)
        model = client.scatter(self, broadcast=True)
        tables = client.gather(client.map(lambda part, reference, m: m.predict(part, water=reference, interval=interval),
                                          parts, references, m=model, pure=False))
        return pd.concat([table for table, _ in tables]), tables[0][1]

    def _saved_parts(self) -> dict:
        extra = {"history": self.history_.as_dict(), "names": self.names_,
                 "nuisance_bias": self.nuisance_bias_.tolist(),
                 "prior_sd": None if self.prior_sd_ is None else self.prior_sd_.tolist()}
        arrays = module_arrays(self.net_) | {"basis_re": self.basis_fid_.real, "basis_im": self.basis_fid_.imag}
        if self.conformal_ is not None:
            state, conformal_arrays = self.conformal_.state()
            extra["conformal"] = state
            arrays |= {f"conformal.{k}": v for k, v in conformal_arrays.items()}
        return {"targets": self.names_, "extra": extra, "arrays": arrays}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.names_ = list(saved.targets)
        self.basis_fid_ = saved.arrays["basis_re"] + 1j * saved.arrays["basis_im"]
        self.nuisance_bias_ = np.asarray(saved.extra.get("nuisance_bias", np.zeros(len(DEFAULT_START))), float)
        prior_sd = saved.extra.get("prior_sd")
        self.prior_sd_ = None if prior_sd is None else np.asarray(prior_sd, float)
        acquisition = saved.axis
        template = MRSData(np.zeros((1, acquisition["points"]), complex), acquisition["dwell_time_s"],
                           acquisition["central_frequency_mhz"])
        basis = Basis(self.names_, self.basis_fid_, acquisition["dwell_time_s"], acquisition["central_frequency_mhz"])
        self.net_ = load_module_arrays(self._build(basis, template), saved.arrays)
        self.conformal_ = None
        if "conformal" in saved.extra:
            self.conformal_ = SplitConformal.restore(
                saved.extra["conformal"], {k.split(".", 1)[1]: v for k, v in saved.arrays.items()
                                           if k.startswith("conformal.")})


def to_concentrations(names: list[str], amplitudes: np.ndarray, sd: np.ndarray, ids: list[str],
                      water: MRSData | None, *, lo: np.ndarray | None = None,
                      hi: np.ndarray | None = None) -> tuple[pd.DataFrame, str]:
    """Amplitudes -> mM (water) or ratio to tCr; totals of `COMBINED`; sd (and lo/hi) alike.
    Totals' sd add in quadrature (independent errors assumed)."""
    values, sds, los, his = {}, {}, {}, {}
    for k, name in enumerate(names):
        values[name], sds[name] = amplitudes[:, k], sd[:, k]
        if lo is not None:
            los[name], his[name] = lo[:, k], hi[:, k]
    for total, parts in COMBINED.items():
        if all(p in names for p in parts):
            values[total] = sum(values[p] for p in parts)
            sds[total] = np.sqrt(sum(sds[p] ** 2 for p in parts))
            if lo is not None:
                los[total], his[total] = sum(los[p] for p in parts), sum(his[p] for p in parts)
    if water is not None:
        if water.n not in (1, len(ids)):
            raise InputError(f"{water.n} water references for {len(ids)} spectra", file=water.source)
        factor = np.broadcast_to(water_scale(water), (len(ids),))
        unit = "mM"
    else:
        if "tCr" not in values:
            raise InputError("ratios to total creatine need Cr and PCr in the basis; give a water reference")
        factor = 1.0 / np.maximum(values["tCr"], 1e-30)
        unit = "ratio to tCr"
    columns = {name: v * factor for name, v in values.items()}
    columns |= {f"{name}_sd": v * factor for name, v in sds.items()}
    if lo is not None:
        columns |= {f"{name}_lo": v * factor for name, v in los.items()}
        columns |= {f"{name}_hi": v * factor for name, v in his.items()}
    return pd.DataFrame(columns, index=pd.Index(ids, name="id")), unit
