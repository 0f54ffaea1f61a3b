"""Build preprocessing pipelines from a JSON/YAML-able spec and apply them to `Spectra`.

A spec is a list of one-key mappings, e.g. ``[{"baseline": {"method": "arpls"}}, {"normalize": {}}]``.
The same spec is stored inside saved models, so new data is preprocessed exactly as training data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.pipeline import Pipeline

from speclearn.core.errors import InputError, existing
from speclearn.core.spectra import Spectra, is_dask
from speclearn.preprocessing.baseline import BaselineCorrector
from speclearn.preprocessing.normalization import Normalizer
from speclearn.preprocessing.resampling import Resampler
from speclearn.preprocessing.scaling import StandardScaler
from speclearn.preprocessing.scatter import ScatterCorrection
from speclearn.preprocessing.selection import BandMask, Crop
from speclearn.preprocessing.smoothing import SavitzkyGolay

STEPS: dict[str, type] = {
    "baseline": BaselineCorrector,
    "savgol": SavitzkyGolay,
    "normalize": Normalizer,
    "scale": StandardScaler,
    "msc": ScatterCorrection,
    "crop": Crop,
    "mask": BandMask,
    "resample": Resampler,
}


def read_spec(path: str | Path) -> list[dict[str, Any]]:
    """Read a pipeline spec from YAML: either a list of steps or ``{steps: [...]}``."""
    path = existing(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({err})", file=path) from None
    if isinstance(spec, dict):
        spec = spec.get("steps")
    if not isinstance(spec, list) or not spec:
        raise InputError("expected a non-empty list of steps (or a 'steps:' key)", file=path)
    return [validate_step(step, file=path) for step in spec]


def validate_step(step: Any, *, file: str | Path | None = None) -> dict[str, Any]:
    if isinstance(step, str):
        step = {step: {}}
    if not isinstance(step, dict) or len(step) != 1:
        raise InputError(f"each step must be one name -> parameters mapping, got {step!r}", file=file)
    (name, params), = step.items()
    if name not in STEPS:
        raise InputError(f"unknown step {name!r}; choose from {', '.join(STEPS)}", file=file)
    params = dict(params or {})
    allowed = set(STEPS[name]().get_params()) - {"axis"}
    unknown = set(params) - allowed
    if unknown:
        raise InputError(f"step {name!r} has no parameter {sorted(unknown)[0]!r} "
                         f"(parameters: {', '.join(sorted(allowed))})", file=file)
    return {name: params}


def build_pipeline(spec: list[dict[str, Any]], axis: np.ndarray) -> Pipeline:
    """An unfitted sklearn Pipeline for `spec`, each axis-aware step given the axis it will see."""
    steps = []
    current = np.asarray(axis, dtype=float)
    for i, step in enumerate(validate_step(s) for s in spec):
        (name, params), = step.items()
        estimator = STEPS[name](**params)
        if "axis" in estimator.get_params():
            estimator.set_params(axis=current)
        if name == "resample":
            current = np.asarray(params["target_axis"], dtype=float)
        elif name in ("crop", "mask"):
            current = current[estimator._keep_mask(current)]
        steps.append((f"{i}_{name}", estimator))
    return Pipeline(steps) if steps else Pipeline([("identity", "passthrough")])


def output_axis(pipeline: Pipeline, axis: np.ndarray) -> np.ndarray:
    for _, step in pipeline.steps:
        if step != "passthrough":
            axis = step.output_axis(axis)
    return axis


def preprocess(spectra: Spectra, spec: list[dict[str, Any]], *, pipeline: Pipeline | None = None) -> tuple[Spectra, Pipeline]:
    """Fit (unless a fitted `pipeline` is given) and apply `spec` to `spectra`; images stay images."""
    if pipeline is None:
        pipeline = build_pipeline(spec, spectra.axis)
        pipeline.fit(spectra.flat())
    out = pipeline.transform(spectra.flat())
    new_axis = output_axis(pipeline, spectra.axis)
    return spectra.with_intensity(out, axis=new_axis), pipeline


def average_by_group(spectra: Spectra, column: str | list[str]) -> Spectra:
    """Average the spectra (shots) that share the value(s) of metadata `column`; ids become the group keys."""
    columns = [column] if isinstance(column, str) else list(column)
    missing = [c for c in columns if c not in spectra.meta.columns]
    if missing:
        raise InputError(f"no metadata column {missing[0]!r} to average by", file=spectra.source)
    keys = spectra.meta[columns].astype(str).agg("/".join, axis=1)
    codes, names = pd.factorize(keys)
    counts = np.bincount(codes)
    flat = spectra.flat()
    if is_dask(flat):
        flat = flat.compute()
    sums = np.zeros((len(names), spectra.n_channels))
    np.add.at(sums, codes, np.asarray(flat, dtype=float))
    first = spectra.meta.groupby(codes, sort=True).first()
    first.index = pd.Index(names, name="id")
    first["n_averaged"] = counts
    return Spectra(sums / counts[:, None], spectra.axis, spectra.axis_kind, spectra.axis_unit,
                   meta=first, source=spectra.source)
