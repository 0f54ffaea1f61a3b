"""`--method auto`: rank candidate methods by cross-validation on the training data only.

Each candidate is fitted on the training folds and scored on the held-out fold (GroupKFold when
groups such as sample or replicate ids are known, else a shuffled KFold); candidates that tune their
own hyperparameters do it inside the training folds, so the estimate is nested. Lower scores are
better. A candidate that fails on the data, collapses (a `Collapsed` error from its scorer) or does
not start before the optional time budget is spent is listed with the reason it lost (with no
budget, the default, the ranking depends only on the data and the seed, never on the machine's speed). Candidates earlier in
the list win ties (within `tie_tolerance`), so a "do nothing" candidate placed first is only
replaced by a method that is better on the validation folds.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from speclearn.core.errors import InputError

#: no wall-clock limit by default: a budget makes the choice depend on machine speed and load
DEFAULT_BUDGET_S: float | None = None
KEY = "selection"


class Collapsed(Exception):
    """A fitted candidate that learned nothing (e.g. predicts a constant); it loses with this reason."""


class _OverBudget(Exception):
    pass


@dataclass
class Candidate:
    """A method to try: `name` for the table, `params` to describe it, `excluded` to list it without running."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    excluded: str | None = None


@dataclass
class Ranking:
    """Cross-validated scores of every candidate and the winner."""

    metric: str
    splitter: str
    n_folds: int
    rows: list[dict[str, Any]]
    winner: str
    budget_s: float
    payloads: dict[str, list] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary stored in the model folder (config `extra["selection"]`)."""
        return {"metric": self.metric, "cv": self.splitter, "folds": self.n_folds, "winner": self.winner,
                "budget_s": self.budget_s, "rows": self.rows,
                "reason": f"lowest mean {self.metric} over {self.n_folds} held-out folds "
                          "(earlier candidates win ties)"}

    def candidate(self, name: str) -> Candidate:
        return next(Candidate(r["candidate"], r["params"]) for r in self.rows if r["candidate"] == name)


def holdout(n: int, fraction: float, seed: int, *, groups: Sequence | None = None,
            min_size: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The one validation split: seeded (train, validation) row indices, each in row order.

    With `groups` (sample or replicate ids) whole groups go to one side. Fewer than `min_size`
    rows: everything trains and the validation part is empty.
    """
    if not 0 <= fraction < 1:
        raise InputError(f"validation fraction must be in [0, 1), got {fraction:g}")
    rows = np.arange(n)
    if n < max(min_size, 2) or fraction == 0:
        return rows, rows[:0]
    rng = np.random.default_rng(seed)
    if groups is None:
        chosen = rng.permutation(n)[:max(1, int(round(fraction * n)))]
    else:
        codes, names = pd.factorize(pd.Series(np.asarray(groups, dtype=object)).astype(str))
        picked = rng.permutation(len(names))[:max(1, int(round(fraction * len(names))))]
        chosen = np.flatnonzero(np.isin(codes, picked))
    validation = np.zeros(n, dtype=bool)
    validation[chosen] = True
    return rows[~validation], rows[validation]


def folds(n: int, groups: Sequence | None = None, *, n_splits: int = 5, seed: int = 0,
          classes: Sequence | None = None, n_repeats: int = 1) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(splitter name, [(train, test) index arrays]): GroupKFold with groups, shuffled KFold without
    (`n_repeats` times with different shuffles: less noise in the ranking of small data sets);
    stratified by `classes` (labels) when given."""
    if classes is not None:
        labels = np.unique(np.asarray(classes, dtype=str), return_inverse=True)[1]
        k = min(n_splits, int(np.bincount(labels).min()))
        if k < 2:
            raise InputError("a class has a single spectrum; cross-validation needs at least 2 per class")
        if groups is not None:
            codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
            splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
            return "StratifiedGroupKFold", list(splitter.split(np.zeros(n), labels, groups=codes))
        return "StratifiedKFold", list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), labels))
    if groups is not None:
        codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
        k = min(n_splits, int(codes.max()) + 1)
        if k < 2:
            raise InputError("all training spectra share one group; cross-validation needs at least 2 groups")
        return "GroupKFold", list(GroupKFold(k).split(np.zeros(n), groups=codes))
    k = min(n_splits, n)
    if k < 2:
        raise InputError(f"{n} training spectra; cross-validation needs at least 2")
    splits = [s for r in range(n_repeats) for s in KFold(k, shuffle=True, random_state=seed + r).split(np.zeros(n))]
    return ("KFold" if n_repeats == 1 else f"KFold x {n_repeats} repeats"), splits


def rank(candidates: Sequence[Candidate], evaluate: Callable[[Candidate, np.ndarray, np.ndarray], tuple[float, Any]],
         splits: tuple[str, list[tuple[np.ndarray, np.ndarray]]], *, metric: str, budget_s: float | None = DEFAULT_BUDGET_S,
         tie_tolerance: float = 0.0, check: Callable[[Candidate, list], None] | None = None) -> Ranking:
    """Score every candidate on every fold; `evaluate(candidate, train, test)` returns (loss, payload).

    `check(candidate, payloads)` may raise `Collapsed` after all folds (e.g. constant out-of-fold
    predictions). The winner is the first candidate (in the given order) whose mean loss is within
    `tie_tolerance` (relative) of the best.
    """
    splitter, fold_list = splits
    start = time.perf_counter()
    deadline = float("inf") if budget_s is None else budget_s
    rows, payloads = [], {}
    for candidate in candidates:
        row = {"candidate": candidate.name, "params": candidate.params, "score": None, "sd": None,
               "fit_s": None, "excluded": candidate.excluded}
        rows.append(row)
        if candidate.excluded:
            continue
        if time.perf_counter() - start > deadline and any(r["score"] is not None for r in rows):
            row["excluded"] = f"time budget ({budget_s:g} s) spent"
            continue
        t0, losses, kept = time.perf_counter(), [], []
        try:
            for train, test in fold_list:
                if time.perf_counter() - start > deadline and any(r["score"] is not None for r in rows):
                    raise _OverBudget(f"time budget ({budget_s:g} s) spent after {len(losses)} fold(s)")
                loss, payload = evaluate(candidate, train, test)
                losses.append(float(loss))
                kept.append(payload)
            if check is not None:
                check(candidate, kept)
            if not np.all(np.isfinite(losses)):
                raise Collapsed("non-finite validation score")
        except _OverBudget as err:
            row["excluded"] = str(err)
        except Collapsed as err:
            row["excluded"] = f"collapsed: {err}"
        except (InputError, ValueError, np.linalg.LinAlgError) as err:
            row["excluded"] = f"failed: {getattr(err, 'problem', None) or err}"
        row["fit_s"] = round(time.perf_counter() - t0, 3)
        if row["excluded"] is None:
            row["score"], row["sd"] = float(np.mean(losses)), float(np.std(losses))
            payloads[candidate.name] = kept
    scored = [r for r in rows if r["score"] is not None]
    if not scored:
        reasons = "; ".join(f"{r['candidate']}: {r['excluded']}" for r in rows)
        raise InputError(f"no candidate method works on these data ({reasons})")
    best = min(r["score"] for r in scored)
    winner = next(r for r in scored if r["score"] <= best + tie_tolerance * abs(best))
    return Ranking(metric, splitter, len(fold_list), rows, winner["candidate"], budget_s, payloads)


def read_groups(path, spectra) -> list[str]:
    """Group labels (first column of a CSV id,group) in the order of the spectra."""
    from speclearn.io import align_table, read_table_csv

    table = read_table_csv(path)
    if table.shape[1] < 1:
        raise InputError("groups file needs an id column and a group column", file=path)
    column = table.columns[0]
    labels = align_table(table, spectra, file=path)[column]
    if labels.isna().any():
        raise InputError(f"missing group label for id {labels.index[labels.isna()][0]!r}", file=path,
                         column=f"2 ({column})")
    return labels.astype(str).tolist()


def show(ranking: Ranking | dict[str, Any], *, title: str = "auto: cross-validated ranking", stdout: bool = False
         ) -> None:
    """Print the ranking table (rich; on stderr, or stdout with `stdout`)."""
    from rich.console import Console
    from rich.table import Table

    from speclearn.cli.common import console

    console = Console(width=140) if stdout else console

    info = ranking.as_dict() if isinstance(ranking, Ranking) else ranking
    table = Table(title=f"{title} ({info['cv']}, {info['folds']} folds, {info['metric']}; lower is better)")
    for column in ("candidate", "score", "sd over folds", "fit s", "note"):
        table.add_column(column, justify="left" if column in ("candidate", "note") else "right")
    ordered = sorted(info["rows"], key=lambda r: (r["score"] is None, r["score"] or 0.0))
    for row in ordered:
        fmt = (lambda v: "" if v is None else f"{v:.4g}")
        note = "winner" if row["candidate"] == info["winner"] else (row["excluded"] or "")
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items() if k not in ("method", "seed")
                           and str(v) not in row["candidate"])
        table.add_row(row["candidate"] + (f" ({params})" if params else ""), fmt(row["score"]), fmt(row["sd"]),
                      fmt(row["fit_s"]), note)
    console.print(table)
