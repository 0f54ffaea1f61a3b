"""Trust in every answer: prediction intervals for every quantifier and QA flags over a run of spectra.

Uncertainty: `conformal` (split-conformal, any quantifier), `counting` (Poisson counting statistics
propagated through the WNNLS physics inversion), `dropout` (Monte Carlo dropout for torch quantifiers),
`ensemble` (deep ensembles of any seeded quantifier); `intervals` stores them in a model folder and
adds `<target>_lo` / `<target>_hi` columns. QA: `qa` (per-spectrum anomaly scores and reasons),
`charts` (EWMA / CUSUM control charts), `sequence` (GRU over the run), `faults` (fault injection).
"""
