"""QA over a run of spectra: per-spectrum anomaly score and reasons, learned from reference spectra.

`RunQA.fit(reference)` learns what in-control spectra look like: binned log counts standardised per
bin, a PCA (latent space for the Mahalanobis out-of-distribution distance and the drift charts), a
small autoencoder (reconstruction error, and per-bin residuals that point at unexpected signal), the
internal standard's recovery and the signal level. A quarter of the reference spectra is held out to
calibrate every per-spectrum statistic (robust z against the held-out median and MAD), so a component's
normalised score > 1 means "beyond `z_limit` robust standard deviations of in-control spectra".

`RunQA.predict(run)` returns per spectrum (in run order) the components, normalised to 1 = limit:
recon (autoencoder reconstruction error), ood (Mahalanobis distance in the PCA latent), spike
(largest narrow excess over a running median), interference (largest per-bin autoencoder residual,
named after the known interferences at that m/z), is_recovery (internal standard outside
`recovery_range`), drift (EWMA chart over the run of the internal-standard recovery, the signal
level (median log ratio to the reference over the bright bins, robust to the sample's composition)
the first latent scores, the reconstruction error and the largest residual, inputs clipped at +-4 so that one outlier does not read as drift);
anomaly_score = the largest, reasons = the components above 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import median_filter
from sklearn.decomposition import PCA
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.models import (SavedModel, SpectralEstimator, TrainingConfig, load_module_arrays, module_arrays,
                              predict_batches, resolve_device, train)
from speclearn.preprocessing.resampling import bin_channels
from speclearn.trust.charts import ewma_chart

COMPONENTS = ("recon", "ood", "spike", "interference", "is_recovery", "drift")
BRIGHT_COUNTS = 20.0  # bins whose reference mean exceeds this many counts measure the signal level


class Autoencoder(nn.Module):
    """features -> hidden -> latent -> hidden -> features (ReLU MLP)."""

    def __init__(self, n_features: int, latent: int = 8, hidden: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _mse_loss(net: nn.Module, batch) -> torch.Tensor:
    return nn.functional.mse_loss(net(batch[0]), batch[0])


def internal_standard_windows(species: str, axis: np.ndarray, half_width: float) -> list[tuple[int, int]]:
    """Channel ranges around the internal standard's isotopes holding >= 5 % abundance."""
    from speclearn.physics.icpms import isotope_pattern

    windows = []
    for mz, fraction in isotope_pattern(species):
        if fraction >= 0.05 and axis.min() < mz < axis.max():
            lo, hi = np.searchsorted(axis, [mz - half_width, mz + half_width])
            windows.append((int(lo), int(hi)))
    return windows


def known_interferences(axis: np.ndarray) -> dict[int, list[str]]:
    """Nominal m/z -> known interfering ions landing there (plasma/matrix polyatomics, oxides, M2+)."""
    from speclearn.physics.icpms import COMMON_INTERFERENCES, isotope_pattern

    out: dict[int, list[str]] = {}
    for name in COMMON_INTERFERENCES:
        charge = name.count("+") or 1
        try:
            pattern = isotope_pattern(name.rstrip("+"), charge)
        except InputError:
            continue
        for mz, fraction in pattern:
            if fraction >= 0.01 and axis.min() <= mz <= axis.max():
                out.setdefault(int(round(mz)), []).append(name if charge == 1 else name.rstrip("+") + "2+")
    return out


class RunQA(SpectralEstimator):
    """Anomaly scores for spectra in a run (see the module docstring).

    internal_standard: element added to every sample ('' for none; m/z axes only).
    n_features: spectra are binned (channels summed) to at most this many bins.
    z_limit: robust z at which a component reaches 1 (is flagged).
    ewma_lambda, ewma_limit: EWMA weight and control limit (in EWMA standard deviations; 3.5 rather than
        the textbook 3 because the chart watches seven inputs at once).
    """

    system, method = "trust", "qa"

    def __init__(self, internal_standard: str = "In", n_features: int = 256, n_components: int = 8,
                 latent: int = 8, epochs: int = 150, z_limit: float = 6.0,
                 recovery_range: tuple[float, float] = (0.7, 1.25), ewma_lambda: float = 0.2, ewma_limit: float = 3.5,
                 spike_window: int = 7, seed: int = 0, progress: bool = False, device: str = "auto"):
        store_params(self, locals())

    # --- per-spectrum statistics -------------------------------------------------------------
    def _features(self, X: np.ndarray) -> np.ndarray:
        return (np.log1p(np.maximum(bin_channels(X, self.bin_), 0)) - self.mean_) / self.sd_

    def _spike(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(largest narrow excess in noise units, channel where it is) per spectrum."""
        smooth = median_filter(X, size=(1, self.spike_window), mode="nearest")
        z = (X - smooth) / np.sqrt(np.maximum(smooth, 0) + 1 + (0.1 * smooth) ** 2)
        return z.max(axis=1), z.argmax(axis=1)

    def _recovery(self, X: np.ndarray) -> np.ndarray | None:
        if not self.windows_:
            return None
        signal = sum(X[:, lo:hi].sum(axis=1) for lo, hi in self.windows_)
        return signal / self.is_reference_

    def _reconstruct(self, features: np.ndarray) -> np.ndarray:
        return predict_batches(self.net_, features, device=resolve_device(self.device), modules=(self.net_,))

    def _statistics(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Raw statistics per spectrum (larger = more unusual), plus helpers for the reasons."""
        f = self._features(X)
        scores = self.pca_.transform(f)
        recon = self._reconstruct(f)
        residual = (f - recon) / self.residual_sd_
        spike, spike_at = self._spike(X)
        out = {"recon": ((f - recon) ** 2).mean(axis=1), "ood": ((scores / self.latent_sd_) ** 2).sum(axis=1),
               "spike": spike, "interference": np.abs(residual).max(axis=1),
               "spike_at": spike_at, "interference_bin": np.abs(residual).argmax(axis=1),
               "latent": scores[:, :3] / self.latent_sd_[:3],
               "level": np.median((f * self.sd_)[:, self.bright_], axis=1)}
        recovery = self._recovery(X)
        if recovery is not None:
            out["recovery"] = recovery
        return out

    def _drift_inputs(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        """(n, features) standardised in-control inputs of the drift chart."""
        columns = [stats["level"], *stats["latent"].T]
        if "recovery" in stats:
            columns.insert(0, np.log(np.maximum(stats["recovery"], 1e-6)))
        return (np.stack(columns, axis=1) - self.drift_centre_) / self.drift_sd_

    # --- fit ----------------------------------------------------------------------------------
    def fit(self, reference: Spectra) -> "RunQA":
        X = reference.values().astype(float)
        if len(X) < 20:
            raise InputError(f"{len(X)} reference spectra; QA needs at least 20 in-control spectra",
                             file=reference.source)
        self.axis_ = reference.axis_spec()
        order = np.random.default_rng(self.seed).permutation(len(X))
        hold, fit_rows = order[: max(5, len(X) // 4)], order[max(5, len(X) // 4):]
        self.bin_ = max(1, int(np.ceil(X.shape[1] / self.n_features)))
        logs = np.log1p(np.maximum(bin_channels(X[fit_rows], self.bin_), 0))
        self.mean_, self.sd_ = logs.mean(axis=0), np.maximum(logs.std(axis=0), 0.05)
        self.bright_ = np.flatnonzero(self.mean_ >= np.log1p(BRIGHT_COUNTS))
        if self.bright_.size == 0:
            self.bright_ = np.arange(len(self.mean_))
        train_features = self._features(X[fit_rows])
        k = min(self.n_components, *train_features.shape)
        self.pca_ = PCA(k, random_state=self.seed).fit(train_features)
        self.latent_sd_ = np.sqrt(np.maximum(self.pca_.explained_variance_, 1e-12))
        torch.manual_seed(self.seed)
        net = Autoencoder(train_features.shape[1], self.latent)
        tensors = lambda F: [torch.from_numpy(F.astype(np.float32))]  # noqa: E731
        config = TrainingConfig.of(self, batch_size=32, learning_rate=1e-3, patience=20)
        self.history_ = train(net, _mse_loss, tensors(train_features), tensors(self._features(X[hold])), config,
                              device=resolve_device(self.device), description="QA autoencoder").as_dict()
        self.net_ = net.cpu().eval()
        self.residual_sd_ = np.maximum((train_features - self._reconstruct(train_features)).std(axis=0), 0.05)
        axis = reference.axis
        self.windows_ = internal_standard_windows(self.internal_standard, axis, 0.5) \
            if self.internal_standard and reference.axis_kind == "mz" else []
        if self.internal_standard and reference.axis_kind == "mz" and not self.windows_:
            raise InputError(f"the internal standard {self.internal_standard} has no isotope on this m/z axis",
                             file=reference.source)
        self.is_reference_ = 1.0
        if self.windows_:
            self.is_reference_ = float(np.median(self._recovery(X[fit_rows])))
            if self.is_reference_ <= 0:
                raise InputError(f"no {self.internal_standard} signal in the reference spectra; "
                                 "use --internal-standard ''", file=reference.source)
        self.drift_centre_, self.drift_sd_ = 0.0, 1.0
        everything = self._statistics(X)  # drift inputs: mean and sd over all reference spectra (the EWMA
        raw = self._drift_inputs(everything)  # averages, so heavy tails count; more spectra, less bias)
        self.drift_centre_, self.drift_sd_ = raw.mean(axis=0), np.maximum(raw.std(axis=0, ddof=1), 1e-9)
        self.level_centre_ = float(np.median(everything["level"]))
        stats = {k: v[hold] for k, v in everything.items()}
        self.calibration_ = {name: _centre_spread(stats[name]) for name in ("recon", "ood", "spike", "interference")}
        self.shape_centre_, self.shape_sd_ = 0.0, 1.0
        shape = self._shape_inputs(stats)  # held-out spectra: the autoencoder fits its own training spectra
        self.shape_centre_, self.shape_sd_ = shape.mean(axis=0), np.maximum(shape.std(axis=0, ddof=1), 1e-9)
        return self

    # --- score --------------------------------------------------------------------------------
    def predict(self, run: Spectra) -> pd.DataFrame:
        """One row per spectrum of `run` (taken in its order): components, anomaly_score, flagged, reasons."""
        run.check_axis_matches(self.axis_, what="the QA model")
        if run.n_spectra < 2:
            raise InputError(f"a run needs at least 2 spectra, got {run.n_spectra}", file=run.source)
        X = run.values().astype(float)
        stats = self._statistics(X)
        table = pd.DataFrame(index=run.meta.index)
        for name, z in self._robust_z(stats).items():
            table[name] = np.maximum(z, 0) / self.z_limit
        lo, hi = self.recovery_range
        if "recovery" in stats:
            table["is_recovery"] = np.maximum(lo / np.maximum(stats["recovery"], 1e-9), stats["recovery"] / hi)
        else:
            table["is_recovery"] = 0.0
        drift = ewma_chart(np.clip(np.column_stack([self._drift_inputs(stats), self._shape_inputs(stats)]), -4, 4),
                           lam=self.ewma_lambda, limit=self.ewma_limit)
        table["drift"] = drift.max(axis=1)
        table["anomaly_score"] = table[list(COMPONENTS)].max(axis=1)
        table["flagged"] = table["anomaly_score"] > 1
        table["is_recovery_value"] = stats.get("recovery", np.full(len(X), np.nan))
        table["signal_level_ratio"] = np.exp(stats["level"] - self.level_centre_)
        table["reasons"] = self._reasons(table, stats, np.asarray(run.axis, float))
        return table

    def _reasons(self, table: pd.DataFrame, stats: dict[str, np.ndarray], axis: np.ndarray) -> list[str]:
        known = known_interferences(axis) if self.axis_.get("kind") == "mz" else {}
        bin_centres = bin_channels(axis[None, :], self.bin_)[0] / bin_channels(np.ones((1, len(axis))), self.bin_)[0]
        out = []
        for i, row in enumerate(table.itertuples()):
            reasons = []
            if row.recon > 1:
                reasons.append("autoencoder reconstruction error")
            if row.ood > 1:
                reasons.append("out-of-distribution latent")
            if row.spike > 1:
                reasons.append(f"spike at {axis[stats['spike_at'][i]]:.4g}")
            if row.interference > 1:
                position = bin_centres[stats["interference_bin"][i]]
                names = known.get(int(round(position)), [])
                reasons.append(f"unexpected signal at {position:.4g}" + (f" ({'/'.join(names[:3])}?)" if names else ""))
            if row.is_recovery > 1:
                reasons.append(f"internal-standard recovery {100 * row.is_recovery_value:.0f} %")
            if row.drift > 1:
                reasons.append("sensitivity/latent drift over the run (EWMA)")
            out.append("; ".join(reasons))
        return out

    def _robust_z(self, stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: (stats[name] - centre) / spread for name, (centre, spread) in self.calibration_.items()}

    def _shape_inputs(self, stats: dict[str, np.ndarray]) -> np.ndarray:
        """(n, 2) reconstruction error and largest residual, standardised: a persistent change of the
        spectra's shape (a new matrix) raises them a little in every spectrum, which the EWMA adds up."""
        z = self._robust_z(stats)
        return (np.column_stack([z["recon"], z["interference"]]) - self.shape_centre_) / self.shape_sd_

    def sequence_features(self, run: Spectra) -> np.ndarray:
        """(n, features) per-spectrum inputs of a sequence model: drift-chart inputs and robust z of the
        per-spectrum statistics (both in in-control standard deviations)."""
        run.check_axis_matches(self.axis_, what="the QA model")
        stats = self._statistics(run.values().astype(float))
        return np.column_stack([self._drift_inputs(stats), *self._robust_z(stats).values()])

    # --- persistence ----------------------------------------------------------------------------
    def _saved_parts(self) -> dict[str, Any]:
        extra = {"bin": self.bin_, "windows": self.windows_, "is_reference": self.is_reference_,
                 "level_centre": self.level_centre_,
                 "calibration": self.calibration_, "history": self.history_, "n_features_in": len(self.mean_)}
        arrays = {"shape_centre": self.shape_centre_, "shape_sd": self.shape_sd_, "mean": self.mean_, "sd": self.sd_,
                  "bright": self.bright_, "drift_centre": self.drift_centre_, "drift_sd": self.drift_sd_,
                  "latent_sd": self.latent_sd_, "residual_sd": self.residual_sd_, **module_arrays(self.net_)}
        return {"extra": extra, "arrays": arrays, "estimators": {"pca": self.pca_}}

    def _restore_saved(self, model: SavedModel) -> None:
        qa, e = self, model.extra
        qa.bin_, qa.windows_ = int(e["bin"]), [tuple(w) for w in e["windows"]]
        qa.is_reference_, qa.history_ = float(e["is_reference"]), e["history"]
        qa.level_centre_ = float(e["level_centre"])
        qa.drift_centre_, qa.drift_sd_ = np.asarray(model.arrays["drift_centre"]), np.asarray(model.arrays["drift_sd"])
        qa.calibration_ = {k: tuple(v) for k, v in e["calibration"].items()}
        qa.mean_, qa.sd_ = np.asarray(model.arrays["mean"]), np.asarray(model.arrays["sd"])
        qa.bright_ = np.asarray(model.arrays["bright"])
        qa.shape_centre_, qa.shape_sd_ = np.asarray(model.arrays["shape_centre"]), np.asarray(model.arrays["shape_sd"])
        qa.latent_sd_, qa.residual_sd_ = np.asarray(model.arrays["latent_sd"]), np.asarray(model.arrays["residual_sd"])
        qa.pca_ = model.estimators["pca"]
        qa.net_ = load_module_arrays(Autoencoder(int(e["n_features_in"]), qa.latent), model.arrays)


def _centre_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 MAD (floored at 1e-3 of the median's scale, never zero)."""
    centre = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - centre)))
    return centre, max(spread, 1e-3 * abs(centre), 1e-9)
