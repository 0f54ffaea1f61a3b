"""CPU thread limits for the many small matrices of per-spectrum fits."""
from __future__ import annotations

import functools
from functools import cache


@cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas(func):
    """Decorator: run `func` with BLAS/LAPACK on one thread. On small matrices a multithreaded BLAS
    spends its time waking and spinning threads (against torch's pool too): on a 2-core machine the
    MRS fits and the WNNLS inversion ran about 3x faster on one thread than on two."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _controller().limit(limits=1, user_api="blas"):
            return func(*args, **kwargs)
    return wrapper
