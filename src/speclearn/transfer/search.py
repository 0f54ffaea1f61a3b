"""Hyperparameter search on the validation split (a plain grid; Optuna is not a dependency)."""
from __future__ import annotations

from typing import Any

from sklearn.model_selection import ParameterGrid

from speclearn.core.spectra import Spectra
from speclearn.metrics import relative_squared_error
from speclearn.transfer.base import TransferModel


def grid_search(cls: type[TransferModel], train: tuple[Spectra, Spectra], validation: tuple[Spectra, Spectra],
                grid: dict[str, list], **fixed: Any) -> tuple[TransferModel, list[dict[str, Any]]]:
    """Fit `cls(**fixed, **point)` for every grid point; keep the lowest validation RSE (unscaled primary space).

    Returns the best fitted model and one row per point (params, validation RSE, fit seconds).
    """
    best, rows = None, []
    for point in ParameterGrid(grid):
        model = cls(**fixed, **point).fit(*train, validation=validation)
        truth = model.reference(validation[0]).values()
        rse = relative_squared_error(model.predict(validation[1]).values(), truth)
        rows.append({"params": point, "validation_rse": rse, "fit_seconds": model.fit_seconds_})
        if best is None or rse < best[0]:
            best = (rse, model)
    return best[1], rows
