"""How the shipped default identifier is made: `python -m speclearn.gamma.pretrain OUT [options]`.

Simulated 1-3 nuclide mixtures with natural background on NaI, LaBr3, CsI, HPGe and a
poor-resolution NaI (1e3-1e6 counts, 1 % gain drift, random lead/iron shielding, 30 % of the spectra
cut at a random 1.4-2.8 MeV like a short-range detector), optionally plus natural-background-only
spectra, with the natural U-238 series' radon daughters partly escaped (`--radon`), labelled with
the detectable nuclides, MLP trained with `models.training.train` (starting
from `--init` weights if given); per-nuclide thresholds are then chosen on validation mixtures with
their own seeds. The recipe is written into the model's config (`extra`, earlier stages under
`started_from`).

The shipped model is the seventh warm-started stage (each stage started with `--init` from the
previous one) with a line check for the natural background (`--line-check`, `train_line_check`):

    python -m speclearn.gamma.pretrain OUT --init STAGE7 --line-check --n 12000 --epochs 30 --seed 500 \
        --background-only 0.25 --scatter-shapes --radon 0.3 1.0

Stage commands, rejected stages and their scores: docs/notes/gamma_pretrain.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from speclearn.gamma.learned import DETECTORS, MLPIdentifier, simulate_training_set, validation_thresholds


def _machine(device: str) -> str:
    """Where a network was trained: the device, then the host."""
    where = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "CPU"
    return (f"{where} ({platform.machine()} host, {os.cpu_count()} cores, shared), {platform.system()}, "
            f"torch {torch.__version__}")


def train_default_model(out: str | Path, *, n_per_detector: int = 6000, epochs: int = 60, seed: int = 0,
                        hidden: int = 768, learning_rate: float = 1e-3,
                        background_only: float = 0.0, scatter_shapes: bool = False,
                        radon: tuple[float, float] = (1.0, 1.0), validation_seed: int | None = 9000, max_seconds: float | None = None,
                        init: str | Path | None = None, overwrite: bool = True) -> Path:
    """Simulate, train (starting from the identifier at `init` if given), choose thresholds, save with the recipe."""
    start, cpu_start = time.perf_counter(), time.process_time()
    simulation = dict(background_only=background_only, scatter_shapes=scatter_shapes, radon=tuple(radon))
    spectra, labels = simulate_training_set(n_per_detector, seed=seed, **simulation)
    start_from = MLPIdentifier.load(init) if init is not None else None
    model = MLPIdentifier(epochs=epochs, hidden=hidden, learning_rate=learning_rate,
                          max_seconds=max_seconds, seed=seed, progress=True).fit(spectra, labels, init=start_from)
    del spectra
    model.set_params(progress=False)
    recipe = {"recipe": "speclearn.gamma.pretrain.train_default_model", "n_per_detector": n_per_detector,
              "detectors": [d if isinstance(d, str) else f"{d[0]} x{d[1]} FWHM" for d in DETECTORS],
              "truncated_share": 0.3, "background_only_share": background_only,
              "random_scatter_shapes": scatter_shapes, "radon_daughters_retained": list(radon),
              "natural_uranium": "U-238 series with U-235 lines at natural abundance", "counts": [1e3, 1e6],
              "seed": seed, "learning_rate": learning_rate, "hidden": hidden,
              "labels": "detectable nuclides (Currie limit)",
              "epochs_run": len(model.history_.train_loss), "best_epoch": model.history_.best_epoch,
              "val_loss": min(model.history_.val_loss), "torch_threads": torch.get_num_threads(),
              "machine": _machine(model.history_.device),
              "started_from": dict(start_from.extra_) if start_from is not None else None}
    if validation_seed is not None:
        model.thresholds_ = validation_thresholds(model, seed=validation_seed, **simulation)
        recipe["thresholds"] = (f"per nuclide, chosen on validation mixtures (seeds from {validation_seed}): the middle "
                                "of those within 4 label errors of the best micro-F1")
    recipe["seconds"] = round(time.perf_counter() - start, 1)
    recipe["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    model.extra_ = recipe
    return model.save(out, overwrite=overwrite)


def train_line_check(out: str | Path, *, init: str | Path, n_per_detector: int = 6000, epochs: int = 20,
                     seed: int = 0, background_only: float = 0.0, scatter_shapes: bool = False,
                     radon: tuple[float, float] = (1.0, 1.0), validation_seed: int = 9000,
                     overwrite: bool = True) -> Path:
    """The identifier at `init` with a line check (`MLPIdentifier.fit_line_check`) trained on new
    mixtures (seeds from `seed`), thresholds chosen again; saved with the recipe."""
    start, cpu_start = time.perf_counter(), time.process_time()
    simulation = dict(background_only=background_only, scatter_shapes=scatter_shapes, radon=tuple(radon))
    model = MLPIdentifier.load(init)
    mlp_thresholds = model.decision_thresholds()
    spectra, labels = simulate_training_set(n_per_detector, seed=seed, **simulation)
    model.fit_line_check(spectra, labels, epochs=epochs, seed=seed)
    del spectra
    model.thresholds_ = validation_thresholds(model, seed=validation_seed, **simulation)
    history = model.check_history_
    model.extra_ = {"recipe": "speclearn.gamma.pretrain.train_line_check", "n_per_detector": n_per_detector,
                    "seed": seed, "background_only_share": background_only, "random_scatter_shapes": scatter_shapes,
                    "radon_daughters_retained": list(radon), "epochs_run": len(history.train_loss),
                    "best_epoch": history.best_epoch, "val_loss": min(history.val_loss),
                    "thresholds": f"per nuclide, chosen on validation mixtures (seeds from {validation_seed})",
                    "mlp_thresholds": mlp_thresholds,
                    "torch_threads": torch.get_num_threads(),
                    "machine": _machine(history.device),
                    "seconds": round(time.perf_counter() - start, 1),
                    "cpu_seconds": round(time.process_time() - cpu_start, 1), "started_from": dict(model.extra_)}
    return model.save(out, overwrite=overwrite)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=6000, help="training mixtures per detector")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="identifier folder whose weights training starts from")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=768, help="hidden units (at least --init's: it is widened)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--background-only", type=float, default=0.0, help="share of background-only spectra")
    parser.add_argument("--scatter-shapes", action="store_true", help="random scattered-continuum shapes")
    parser.add_argument("--radon", type=float, nargs=2, default=(1.0, 1.0), metavar=("LO", "HI"),
                        help="range of the natural U-238 series' radon daughters retained (default 1 1: equilibrium)")
    parser.add_argument("--max-seconds", type=float, default=0, help="training time limit (0: none, reproducible)")
    parser.add_argument("--line-check", action="store_true", help="train only a line check for --init's MLP")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.line_check:
        print(train_line_check(args.out, init=args.init, n_per_detector=args.n, epochs=args.epochs, seed=args.seed,
                               background_only=args.background_only, scatter_shapes=args.scatter_shapes,
                               radon=args.radon))
        raise SystemExit
    print(train_default_model(args.out, n_per_detector=args.n, seed=args.seed, init=args.init, epochs=args.epochs,
                              hidden=args.hidden,
                              learning_rate=args.learning_rate,
                              background_only=args.background_only, scatter_shapes=args.scatter_shapes, radon=args.radon,
                              max_seconds=args.max_seconds or None))
