"""QA flags over a run of spectra: `qa` (per-spectrum anomaly scores and reasons), `charts`
(EWMA / CUSUM control charts), `sequence` (GRU over the run), `faults` (fault injection for tests
and benchmarks). Prediction intervals live with the quantifiers (`speclearn.quantify.intervals`)
and split-conformal calibration in the core (`speclearn.models.conformal`).
"""
from speclearn.trust.qa import RunQA

__all__ = ["RunQA"]
