"""Shared benchmark statistics."""
from __future__ import annotations

import numpy as np

from speclearn.metrics import paired_t_test


def test_one_huge_difference_swamps_the_t_test_but_not_the_signed_rank_test():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a + 0.01  # a is lower on every item...
    b[0] -= 50.0  # ...but one
    result = paired_t_test(a, b)
    assert result["mean_difference"] > 0 and result["p"] > 0.1
    assert result["wilcoxon_p"] < 1e-10
    assert result["n"] == 200
