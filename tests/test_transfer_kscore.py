"""The k-score ceiling of the transfer benchmark (issue 17): a perfect transfer predicts the expected
measured primary spectrum, which the simulator gives by redrawing the counting noise of the same shots."""
from __future__ import annotations

import numpy as np
import pytest

from speclearn.metrics import relative_squared_error
from speclearn.simulate.libs import remeasure, simulate_libs_map
from speclearn.transfer import NoTransfer
from speclearn.transfer.benchmark import expected_primary
from speclearn.transfer.evaluation import ClusterScorer, transfer_scores


@pytest.fixture(scope="module")
def maps():
    return {"train": simulate_libs_map(10, 10, seed=3), "validation": simulate_libs_map(6, 10, seed=4),
            "test": simulate_libs_map(10, 10, seed=5), "clean": simulate_libs_map(10, 10, seed=5, shot_noise=False)}


def test_remeasure_redraws_only_the_counting_noise(maps):
    clean = maps["clean"].primary
    draws = [remeasure(clean, seed=s).values() for s in range(32)]
    assert draws[0].shape == clean.values().shape and remeasure(clean, seed=0).ids == clean.ids
    np.testing.assert_array_equal(draws[0], remeasure(clean, seed=0).values())
    assert not np.array_equal(draws[0], draws[1])
    residual = np.mean(draws, axis=0) - clean.values()
    single = draws[0] - clean.values()
    assert np.std(residual) < 0.25 * np.std(single)  # zero-mean noise: 32 draws average it down ~5.7x
    assert abs(np.mean(single)) < 0.05 * np.std(single)
    # the measured primary is one such draw: its noise has the same size
    assert np.std(maps["test"].primary.values() - clean.values()) == pytest.approx(np.std(single), rel=0.05)


def test_perfect_transfer_reaches_the_ceiling_and_no_transfer_does_not(maps):
    model = NoTransfer().fit(maps["train"].primary, maps["train"].secondary)
    clusters = ClusterScorer(seed=0).fit(model.reference(maps["train"].primary).values(),
                                         model.reference(maps["validation"].primary).values())
    truth = model.reference(maps["test"].primary).values()
    expected = expected_primary(model, maps["clean"].primary, seed=100)
    noise_free = model.reference(maps["clean"].primary).values()
    perfect = transfer_scores(truth, expected, clusters)
    assert perfect["k_score"] >= 0.95
    # the noise-free shot is not what a perfect transfer predicts: a noisy spectrum's rolling-minimum
    # baseline sits lower, so the measured spectrum is offset from it
    assert perfect["rse"] < 0.5 * relative_squared_error(noise_free, truth)
    none = transfer_scores(truth, model.predict(maps["test"].secondary).values(), clusters)
    assert none["k_score"] < perfect["k_score"] - 0.3
