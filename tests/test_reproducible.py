"""Same seed, same result: training commands are bit-reproducible on the CPU (no wall-clock limits
decide anything unless the user sets a time budget)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclearn.io import write_spectra, write_table_csv
from speclearn.models import load


def _outputs(folder, spectra) -> np.ndarray:
    model = load(folder)
    if model.system == "classify":
        return model.predict_proba(spectra)
    result = model.predict(spectra) if model.system == "quantify" else model.transform(spectra)
    return result.values() if hasattr(result, "axis") else result.to_numpy()


@pytest.mark.parametrize("system, method, extra", [
    ("quantify", "auto", ()),
    ("classify", "cnn", ("--epochs", "3", "--pretrain-epochs", "1", "--device", "cpu")),
    ("denoise", "auto", ()),
])
def test_training_twice_with_one_seed_gives_identical_models(cli, tmp_path, spectra, system, method, extra):
    write_spectra(spectra, tmp_path / "s.csv")
    fat = spectra.values()[:, 20:40].sum(axis=1)
    write_table_csv(pd.DataFrame({"fat": fat - fat.min() + 1}, index=spectra.meta.index), tmp_path / "t.csv")
    write_table_csv(pd.DataFrame({"label": ["a", "b", "c"] * 4}, index=spectra.meta.index), tmp_path / "l.csv")
    labels = {"quantify": ("--targets", tmp_path / "t.csv"), "classify": ("--labels", tmp_path / "l.csv"),
              "denoise": ("--groups", tmp_path / "l.csv")}[system]
    for run in ("a", "b"):
        code, _, err = cli(system, "train", "--spectra", tmp_path / "s.csv", *labels, "--method", method,
                           "--seed", 3, *extra, "--out", tmp_path / run)
        assert code == 0, err
    a, b = _outputs(tmp_path / "a", spectra), _outputs(tmp_path / "b", spectra)
    np.testing.assert_array_equal(a, b)
    weights = [folder / "weights.safetensors" for folder in (tmp_path / "a", tmp_path / "b")]
    if weights[0].exists():
        assert weights[0].read_bytes() == weights[1].read_bytes()
