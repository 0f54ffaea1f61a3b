"""The one body of every scikit-learn style `__init__`."""
from __future__ import annotations

from typing import Any


def keep_params(estimator: Any, arguments: dict[str, Any]) -> None:
    """Store each `__init__` argument, unchanged, as the attribute of its name (scikit-learn's rule: no
    logic and no validation there). Call it as the whole body: `keep_params(self, locals())`."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
