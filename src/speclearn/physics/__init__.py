"""Physics shared by the simulators and the estimators (one implementation of each model)."""
