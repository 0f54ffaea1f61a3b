"""Instrument physics shared by the simulators and the estimators (no estimator imports a simulator for it)."""
