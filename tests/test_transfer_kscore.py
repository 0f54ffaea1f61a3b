"""k-score on principal components: a perfect (noise-free) prediction is not scored down for the truth's noise."""
from __future__ import annotations

import numpy as np

from speclearn.transfer.evaluation import ClusterScorer


def test_k_score_on_principal_components_lifts_the_ceiling_of_a_noise_free_prediction():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 400)) + 5.0

    def draw(n):
        labels = rng.integers(0, 3, n)
        clean = centres[labels] + 0.3 * rng.normal(0, 1, (n, 1)) * (centres[(labels + 1) % 3] - centres[labels])
        return clean, clean + rng.normal(0, 1.2, clean.shape)

    train, validation = draw(300)[1], draw(150)[1]
    clean, noisy = draw(300)
    scores = {n: ClusterScorer(grid=(3, 4), seed=0, n_components=n).fit(train, validation).score(noisy, clean)
              for n in (None, 5)}
    assert scores[5] >= 0.97
    assert scores[5] > scores[None]
