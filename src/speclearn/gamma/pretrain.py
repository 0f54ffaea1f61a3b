"""How the shipped default identifier is made: `python -m speclearn.gamma.pretrain OUT [N_PER_DETECTOR [SEED [INIT]]]`.

Simulated 1-3 nuclide mixtures with natural background on NaI, LaBr3, CsI, HPGe and a
poor-resolution NaI (1e3-1e6 counts, 1 % gain drift, random lead/iron shielding, 30 % of the spectra
cut at a random 1.4-2.8 MeV like a short-range detector), labelled with the detectable nuclides, MLP
trained with `models.training.train`; the recipe is written into the model's config (`extra`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from speclearn.gamma.learned import DETECTORS, MLPIdentifier, simulate_training_set


def train_default_model(out: str | Path, *, n_per_detector: int = 6000, epochs: int = 60, seed: int = 0,
                        hidden: int = 768, max_seconds: float | None = 1800, init: str | Path | None = None,
                        overwrite: bool = True) -> Path:
    """Simulate, train (starting from the identifier at `init` if given) and save with the recipe."""
    start = time.perf_counter()
    spectra, labels = simulate_training_set(n_per_detector, seed=seed)
    start_from = MLPIdentifier.load(init) if init is not None else None
    model = MLPIdentifier(epochs=epochs, hidden=hidden, max_seconds=max_seconds, seed=seed).fit(
        spectra, labels, init=start_from)
    previous = dict(start_from.extra_) if start_from is not None else None
    recipe = {"recipe": "speclearn.gamma.pretrain.train_default_model", "n_per_detector": n_per_detector,
              "detectors": [d if isinstance(d, str) else f"{d[0]} x{d[1]} FWHM" for d in DETECTORS],
              "truncated_share": 0.3, "counts": [1e3, 1e6], "seed": seed,
              "epochs_run": len(model.history_.train_loss), "best_epoch": model.history_.best_epoch,
              "val_loss": min(model.history_.val_loss), "seconds": round(time.perf_counter() - start, 1),
              "torch_threads": torch.get_num_threads(), "started_from": previous}
    model.extra_ = recipe
    return model.save(out, overwrite=overwrite)


if __name__ == "__main__":
    torch.set_num_threads(1)
    target = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    init = sys.argv[4] if len(sys.argv) > 4 else None
    print(train_default_model(target, n_per_detector=n, seed=seed, init=init, max_seconds=1200))
