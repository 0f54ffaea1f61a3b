"""Train the models shipped in `speclearn/mrs/data/models/` (CNN aligner, transient detector) on
transients simulated from the shipped ISMRM 2016 basis: `python -m speclearn.mrs.pretrain [OUT]`.
The settings used are stored in each model's config.json (params, training history)."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from speclearn.mrs.align_cnn import CNNAligner
from speclearn.mrs.artifacts import TransientDetector
from speclearn.mrs.basis import load_basis

ALIGNER = {"n_scans": 800, "augment": 12, "epochs": 40, "max_seconds": 900.0, "seed": 0}
DETECTOR = {"n_scans": 300, "epochs": 30, "max_seconds": 600.0, "seed": 1}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    basis = load_basis()
    out.mkdir(parents=True, exist_ok=True)
    CNNAligner(**ALIGNER).fit(basis).save(out / "aligner", overwrite=True)
    print("aligner written", flush=True)
    TransientDetector(**DETECTOR).fit(basis).save(out / "detector", overwrite=True)
    print("detector written", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "models")
