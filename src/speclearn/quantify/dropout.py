"""Monte Carlo dropout for torch quantifiers (any quantifier holding its network in `net_`).

At prediction time dropout (rate `rate`) is applied after every ReLU of the network, `samples` forward
passes are drawn with seeds seed, seed + 1, ... and their mean and standard deviation returned. The
quantify networks are trained without dropout, so this spread is a test-time perturbation whose
scale is not calibrated by itself: the benchmark reports its raw Gaussian coverage and, through the
`scaled` conformal score, a calibrated version.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from scipy.stats import norm

from speclearn.core.errors import InputError
from speclearn.models.conformal import check_level


@contextmanager
def dropout_after_relu(net: torch.nn.Module, rate: float):
    """Inside the block every ReLU output of `net` goes through dropout (training-mode scaling)."""
    hooks = [m.register_forward_hook(lambda _m, _i, out: torch.nn.functional.dropout(out, rate, training=True))
             for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    if not hooks:
        raise InputError("Monte Carlo dropout needs a network with ReLU layers")
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


class MCDropout:
    """Spread of a torch quantifier's predictions under test-time dropout."""

    name = "dropout"

    def __init__(self, rate: float = 0.1, samples: int = 30, seed: int = 0):
        self.rate, self.samples, self.seed = rate, samples, seed

    @staticmethod
    def check(model) -> None:
        if not isinstance(getattr(model, "net_", None), torch.nn.Module):
            raise InputError(f"Monte Carlo dropout needs a neural quantifier, not "
                             f"{getattr(model, 'method', type(model).__name__)!r}")

    def draws(self, model, X: np.ndarray) -> np.ndarray:
        """(samples, n, targets) predictions, deterministic for the seed."""
        self.check(model)
        out = []
        with dropout_after_relu(model.net_, self.rate), torch.random.fork_rng():
            for k in range(self.samples):
                torch.manual_seed(self.seed + k)
                out.append(model._predict(X))
        out = np.stack(out)
        if len(X) and self.samples > 1 and not np.ptp(out, axis=0).any():
            raise InputError(f"Monte Carlo dropout: the predictions of {getattr(model, 'method', 'this model')!r} do "
                             "not pass through any ReLU layer of its network (CAEM-MT physics: the concentrations "
                             "come from the weighted solve); use a deep ensemble or a conformal interval")
        return out

    def sigma(self, model, X: np.ndarray) -> np.ndarray:
        return self.draws(model, X).std(axis=0, ddof=1)

    def interval(self, p: np.ndarray, level: float, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = norm.ppf(0.5 + check_level(level) / 2)
        return p - z * sigma, p + z * sigma

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"rate": self.rate, "samples": self.samples, "seed": self.seed}, {}

    @classmethod
    def restore(cls, extra, arrays) -> "MCDropout":
        return cls(float(extra["rate"]), int(extra["samples"]), int(extra["seed"]))
