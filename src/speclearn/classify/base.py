"""The shared base of every classifier: labels checked once, preprocessing, top-k output, persistence.

A subclass implements `_fit_arrays(X, y)` and `_proba_arrays(X)` on preprocessed (n, channels)
arrays with integer class codes, plus `_state()` / `_restore(model)` for the SavedModel format.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from speclearn.core.errors import InputError
from speclearn.core.spectra import Spectra
from speclearn.io import align_table, read_table_csv
from speclearn.models import SavedModel
from speclearn.models.estimator import SpectralEstimator
from speclearn.preprocessing import preprocess

#: default preprocessing of every classifier: standard normal variate, spectrum by spectrum
DEFAULT_PREPROCESSING: list[dict[str, Any]] = [{"normalize": {"method": "snv"}}]
TOP_K = 3


def read_labels(path: str | Path, spectra: Spectra) -> pd.Series:
    """`id,label` (or `id,class`, or any single column) as a Series in the order of the spectra."""
    table = read_table_csv(path)
    if "label" in table.columns:
        column = "label"
    elif "class" in table.columns:
        column = "class"
    elif len(table.columns) == 1:
        column = table.columns[0]
    else:
        raise InputError(f"expected a 'label' (or 'class') column, found {', '.join(map(str, table.columns))}",
                         file=path)
    labels = table[column]
    empty = labels.isna() | (labels.astype(str).str.strip() == "")
    if empty.any():
        r = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputError("missing label", file=path, row=f"{r + 1} (id {labels.index[r]!r})", column=2)
    return check_labels(labels.astype(str).str.strip(), spectra, file=path)


def check_labels(labels: pd.Series, spectra: Spectra, *, file: str | Path | None = None) -> pd.Series:
    """Labels aligned to the spectra; at least two classes, each with at least two examples."""
    if not isinstance(labels, pd.Series):
        raise InputError("labels must be a pandas Series indexed by spectrum id", file=file)
    labels = labels.copy()
    labels.index = labels.index.astype(str)
    labels = align_table(labels.rename("label").to_frame(), spectra, file=file)["label"].astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise InputError(f"need at least two classes, found only {counts.index[0]!r}", file=file)
    single = counts[counts < 2]
    if len(single):
        raise InputError(f"class {single.index[0]!r} has only one example; every class needs at least two "
                         "(drop it or add spectra)", file=file)
    return labels


def top_k_frame(proba: np.ndarray, classes: np.ndarray, ids: list[str], k: int = TOP_K) -> pd.DataFrame:
    """class, probability and top1..topk (with probabilities) per spectrum; empty where k > classes."""
    order = np.argsort(-proba, axis=1, kind="stable")
    frame = pd.DataFrame(index=pd.Index(ids, name="id"))
    frame["class"] = classes[order[:, 0]]
    frame["probability"] = proba[np.arange(len(proba)), order[:, 0]]
    for j in range(k):
        if j < len(classes):
            frame[f"top{j + 1}"] = classes[order[:, j]]
            frame[f"top{j + 1}_probability"] = proba[np.arange(len(proba)), order[:, j]]
        else:
            frame[f"top{j + 1}"] = ""
            frame[f"top{j + 1}_probability"] = np.nan
    return frame


class SpectralClassifier(SpectralEstimator):
    """Assign each spectrum a class with a probability; `predict` returns the top-3 table."""

    system: ClassVar[str] = "classify"

    def fit(self, spectra: Spectra, labels: pd.Series) -> "SpectralClassifier":
        labels = check_labels(labels, spectra, file=spectra.source)
        spectra.check_trainable()
        self.classes_ = np.array(sorted(labels.unique()), dtype=object)
        y = np.searchsorted(self.classes_.astype(str), labels.to_numpy(dtype=str))
        spectra = spectra.compute()
        processed, self.pipeline_ = preprocess(spectra, self._preprocessing())
        self.axis_ = spectra.axis_spec()
        self._fit_arrays(processed.values(), y)
        self.learn_domain(spectra.values())
        return self

    def _preprocessing(self) -> list[dict[str, Any]]:
        return DEFAULT_PREPROCESSING if self.preprocessing is None else list(self.preprocessing)

    def transform_input(self, spectra: Spectra) -> np.ndarray:
        """Preprocessed (n, channels) array, after refusing spectra on another axis."""
        self.check_spectra(spectra)
        processed, _ = preprocess(spectra.compute(), self._preprocessing(), pipeline=self.pipeline_)
        return processed.values()

    def predict_proba(self, spectra: Spectra) -> np.ndarray:
        """(n, classes) probabilities, columns in the order of `classes_`."""
        return self._proba_arrays(self.transform_input(spectra))

    def predict(self, spectra: Spectra) -> pd.DataFrame:
        """Per spectrum id: class, probability, top1..top3 with probabilities."""
        return top_k_frame(self.predict_proba(spectra), self.classes_, spectra.ids)

    # --- persistence -------------------------------------------------------------------------
    def _saved_parts(self) -> dict[str, Any]:
        arrays, estimators = self._state()
        return {"targets": [str(c) for c in self.classes_], "preprocessing": self._preprocessing(),
                "arrays": arrays, "estimators": {"preprocessing": self.pipeline_, **estimators}}

    def _restore_saved(self, saved: SavedModel) -> None:
        self.classes_ = np.array(saved.targets, dtype=object)
        self.pipeline_ = saved.estimators["preprocessing"]
        self._restore(saved)

    # --- for subclasses ------------------------------------------------------------------------
    def _fit_arrays(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _proba_arrays(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raise NotImplementedError

    def _restore(self, model: SavedModel) -> None:
        raise NotImplementedError


class SklearnClassifier(SpectralClassifier):
    """A classifier whose work is one scikit-learn estimator (saved with skops)."""

    def _make_estimator(self, y: np.ndarray) -> Any:
        raise NotImplementedError

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray) -> None:
        self.estimator_ = self._make_estimator(y).fit(X, y)

    def _proba_arrays(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"estimator": self.estimator_}

    def _restore(self, model: SavedModel) -> None:
        self.estimator_ = model.estimators["estimator"]
