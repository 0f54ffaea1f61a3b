"""Hyperparameters kept scikit-learn style."""


def store_params(estimator, params: dict) -> None:
    """Keep each `__init__` argument as the attribute of the same name (what scikit-learn's
    `get_params` reads back); called first thing in `__init__` as `store_params(self, locals())`."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
