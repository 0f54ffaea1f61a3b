"""Conditional generation of material spectra: a ReVAE-style variational autoencoder.

After Joy et al., "Capturing label characteristics in VAEs" (ICLR 2021; first circulated as
ReVAE): the latent space is split into characteristic latents z_c, one per material, whose
conditional prior p(z_c | y) is learnt per label, and free latents z_s ~ N(0, I) for everything
else (counts, drift, background). Training (supervised) maximises the reconstruction of the
spectrum (multinomial likelihood of its counts over the materials grid), keeps q(z_c | x) close to
p(z_c | y) and q(z_s | x) close to N(0, I), and trains a classifier q(y | z_c) on the
characteristic latents. To generate, z_c is drawn from p(z_c | y) for the requested material, or
for a mixture from the prior whose mean is the mixture-weighted mean of the materials' means,
z_s from N(0, I); the decoded bin probabilities are sampled with Poisson counts of a requested total.

Optionally conditioned on a domain (a detector setting, simulated vs measured): encoder and decoder
also see the domain as a one-hot input, so plentiful spectra of one setting teach the materials and
a few of another teach how that setting changes them; `generate(..., domain=)` asks for a setting.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import torch
from torch import nn

from speclearn.core.errors import InputError
from speclearn.core.params import store_params
from speclearn.core.spectra import Spectra
from speclearn.gamma.grid import energy_axis, energy_spectra, rebin, sqrt_grid
from speclearn.gamma.materials_cnn import GRID
from speclearn.models import SavedModel, SpectralEstimator, resolve_device
from speclearn.models.training import TrainingConfig, load_module_arrays, module_arrays, train

#: the reconstruction counts as a multinomial of this many counts (tempered: the latents stay informative)
RECONSTRUCTION_COUNTS = 50.0
#: weight of the free latents' KL term (> 1 keeps the material out of z_s, so a random z_s keeps it)
FREE_KL_WEIGHT = 10.0


class _ReVAE(nn.Module):
    def __init__(self, n_bins: int, n_classes: int, free: int, hidden: int, n_domains: int = 0):
        super().__init__()
        self.n_classes, self.free, self.n_domains = n_classes, free, n_domains
        latent = n_classes + free
        self.encoder = nn.Sequential(nn.Linear(n_bins + n_domains, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent + n_domains, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                     nn.ReLU(), nn.Linear(hidden, n_bins))
        self.prior_mean = nn.Parameter(3.0 * torch.eye(n_classes))   # row k: mean of z_c for material k
        self.prior_logvar = nn.Parameter(torch.zeros(n_classes, n_classes))  # row k: its log-variance
        self.classifier = nn.Linear(n_classes, n_classes)

    def prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(z_c | y) for label weights y (one-hot or a mixture)."""
        return y @ self.prior_mean, y @ self.prior_logvar

    def forward(self, shares: torch.Tensor, domain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(torch.cat([torch.sqrt(shares), domain], dim=1)).chunk(2, dim=1)
        return mean, logvar.clamp(-8.0, 8.0)

    def decode(self, z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """Logits of the bin probabilities."""
        return self.decoder(torch.cat([z, domain], dim=1))


def _kl(mean, logvar, prior_mean, prior_logvar) -> torch.Tensor:
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mean - prior_mean) ** 2) / prior_logvar.exp() - 1.0).sum(1)


def _loss(module: _ReVAE, batch, classifier_weight: float = 10.0) -> torch.Tensor:
    shares, y, domain = batch
    mean, logvar = module(shares, domain)
    z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
    log_p = torch.log_softmax(module.decode(z, domain), dim=1)
    reconstruction = -(shares * log_p).sum(1) * RECONSTRUCTION_COUNTS  # multinomial NLL (tempered)
    k = module.n_classes
    prior_mean, prior_logvar = module.prior(y)
    kl = _kl(mean[:, :k], logvar[:, :k], prior_mean, prior_logvar.clamp(max=0.0)) + \
        FREE_KL_WEIGHT * _kl(mean[:, k:], logvar[:, k:], torch.zeros_like(mean[:, k:]), torch.zeros_like(mean[:, k:]))
    classify = nn.functional.cross_entropy(module.classifier(z[:, :k]), y.argmax(1), reduction="none")
    return (reconstruction + kl + classifier_weight * classify).mean()


def grid_counts(spectra: Spectra) -> np.ndarray:
    """Counts on the materials grid (sqrt(E), 150 keV - 11 MeV)."""
    spectra = energy_spectra(spectra)
    return np.clip(rebin(spectra.values(), spectra.axis, sqrt_grid(*GRID)), 0.0, None)


class ReVAEGenerator(SpectralEstimator):
    """Conditional generator of material spectra; `fit(spectra, labels)`, then `generate(requests)`."""

    system, method = "gamma", "revae"

    def __init__(self, free: int = 4, hidden: int = 256, epochs: int = 300, learning_rate: float = 1e-3,
                 batch_size: int = 64, max_seconds: float | None = None, seed: int = 0, progress: bool = False,
                 device: str = "auto"):
        store_params(self, locals())

    def fit(self, spectra: Spectra, labels, *, domains=None) -> "ReVAEGenerator":
        """Learn from labelled material spectra (one label per spectrum; `domains`: optionally one
        setting name per spectrum, e.g. 'simulated' / 'measured', which conditions the model)."""
        labels = pd.Series(list(labels), dtype=str)
        if len(labels) != spectra.n_spectra:
            raise InputError(f"{spectra.n_spectra} spectra but {len(labels)} labels", file=spectra.source)
        domains = pd.Series(list(domains) if domains is not None else [], dtype=str)
        if len(domains) not in (0, spectra.n_spectra):
            raise InputError(f"{spectra.n_spectra} spectra but {len(domains)} domains", file=spectra.source)
        spectra.check_trainable()
        counts = grid_counts(spectra)
        totals = counts.sum(axis=1)
        if np.any(totals <= 0):
            raise InputError("a spectrum has no counts in 150 keV - 11 MeV", file=spectra.source)
        self.classes_ = np.array(sorted(labels.unique()), dtype=object)
        self.domains_ = sorted(domains.unique())
        self.axis_ = energy_axis(sqrt_grid(*GRID))
        self.log_counts_ = [float(np.log10(totals.min())), float(np.log10(totals.max()))]
        y = np.eye(len(self.classes_), dtype=np.float32)[np.searchsorted(self.classes_.astype(str), labels.to_numpy())]
        X = torch.as_tensor((counts / totals[:, None]).astype(np.float32))
        torch.manual_seed(self.seed)
        self.net_ = _ReVAE(X.shape[1], len(self.classes_), self.free, self.hidden, len(self.domains_))
        config = TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                                patience=self.epochs, max_seconds=self.max_seconds, seed=self.seed,
                                progress=self.progress)
        d = self._domain_matrix(domains.tolist() if len(domains) else [None] * len(X))
        self.history_ = train(self.net_, _loss, [X, torch.as_tensor(y), d], None, config,
                              device=resolve_device(self.device), description="ReVAE")
        self.net_.cpu()  # generation draws on the CPU (its seeded torch.Generator)
        return self

    def _domain_matrix(self, domains: list) -> torch.Tensor:
        """One-hot rows of the domains (no columns for a generator without domains)."""
        out = torch.zeros((len(domains), len(self.domains_)))
        for i, name in enumerate(domains):
            if self.domains_:
                if name not in self.domains_:
                    raise InputError(f"domain {name!r}: the generator knows {', '.join(self.domains_)}")
                out[i, self.domains_.index(name)] = 1.0
        return out

    def weights(self, request: str | dict[str, float]) -> np.ndarray:
        """Label weights for a material name, 'A:0.7+B:0.3', or a {material: weight} dict."""
        if isinstance(request, str):
            parts = [p.strip() for p in request.split("+") if p.strip()]
            request = {}
            for part in parts:
                name, _, weight = part.partition(":")
                try:
                    request[name.strip()] = float(weight) if weight else 1.0
                except ValueError:
                    raise InputError(f"mixture weight {weight!r} is not a number (use A:0.7+B:0.3)") from None
        out = np.zeros(len(self.classes_))
        for name, weight in request.items():
            if name not in set(self.classes_):
                raise InputError(f"unknown material {name!r}; the generator knows {', '.join(self.classes_)}")
            if not weight >= 0:
                raise InputError(f"mixture weight of {name!r} must be >= 0")
            out[list(self.classes_).index(name)] += weight
        if out.sum() <= 0:
            raise InputError("a request needs at least one material with a positive weight")
        return out / out.sum()

    def generate(self, requests, n: int = 1, *, counts: tuple[float, float] | None = None, seed: int = 0,
                 domain: str | None = None) -> tuple[Spectra, pd.DataFrame]:
        """`n` spectra per request (material names or mixtures, see `weights`) on the materials grid, in
        `domain` (needed when the generator was trained with domains); totals log-uniform in `counts`
        (default: the training range). Returns (spectra, truth)."""
        if not hasattr(self, "net_"):
            raise InputError("the generator is not fitted")
        if n < 1:
            raise InputError("n must be at least 1")
        if self.domains_ and domain is None:
            raise InputError(f"name the domain to generate: one of {', '.join(self.domains_)}")
        requests = [requests] if isinstance(requests, (str, dict)) else list(requests)
        y = np.repeat(np.vstack([self.weights(r) for r in requests]), n, axis=0)
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        self.net_.eval()
        with torch.no_grad():
            mean, logvar = self.net_.prior(torch.as_tensor(y, dtype=torch.float32))
            logvar = logvar.clamp(max=0.0)
            z_c = mean + torch.randn(mean.shape, generator=generator) * (0.5 * logvar).exp()
            z_s = torch.randn((len(y), self.free), generator=generator)
            d = self._domain_matrix([domain] * len(y))
            p = torch.softmax(self.net_.decode(torch.cat([z_c, z_s], dim=1), d), dim=1).numpy().astype(float)
        low, high = np.log10(counts) if counts is not None else self.log_counts_
        totals = 10 ** rng.uniform(low, high, len(y))
        X = rng.poisson(p * totals[:, None]).astype(float)
        names = [self._describe(w) for w in y]
        ids = pd.Index([f"gen{i:0{len(str(len(y) - 1))}d}" for i in range(len(y))], name="id")
        truth = pd.DataFrame(y, index=ids, columns=[str(c) for c in self.classes_]).assign(label=names)
        return Spectra(X, sqrt_grid(*GRID), axis_kind="energy", axis_unit="keV", meta=pd.DataFrame(index=ids)), truth

    def _describe(self, weights: np.ndarray) -> str:
        parts = [(self.classes_[j], w) for j, w in enumerate(weights) if w > 0]
        return parts[0][0] if len(parts) == 1 else "+".join(f"{name}:{w:.3g}" for name, w in parts)

    def _saved_parts(self) -> dict:
        return {"targets": [str(c) for c in self.classes_],
                "extra": {"log_counts": self.log_counts_, "domains": list(self.domains_)},
                "arrays": module_arrays(self.net_)}

    def _restore_saved(self, model: SavedModel) -> None:
        self.classes_ = np.array(model.targets, dtype=object)
        self.log_counts_ = list(model.extra["log_counts"])
        self.domains_ = list(model.extra.get("domains", []))
        self.net_ = load_module_arrays(_ReVAE(len(model.axis["values"]), len(self.classes_), self.free, self.hidden,
                                              len(self.domains_)), model.arrays)
