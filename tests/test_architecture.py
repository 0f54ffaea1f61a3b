"""The import graph: one shared core, one folder per system beside it, no system importing another.

Benchmarks, pretraining scripts and CLI modules compose systems (a benchmark runs simulators and
compares methods); everything else in a system folder imports only the core (core, io, models,
preprocessing, physics, metrics, report, cli.common). Simulators are systems too: an estimator takes
its physics from `speclearn.physics`, never from a simulator.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import speclearn
from speclearn.models.estimator import SYSTEMS

PACKAGE = Path(speclearn.__file__).parent
SYSTEM_FOLDERS = set(SYSTEMS) | {"simulate", "auto"}
#: modules that compose systems by design
COMPOSERS = ("benchmark", "pretrain", "cli")
#: fault injection draws runs from the ICP-MS simulator: a simulator built on a simulator
ALLOWED = {("trust/faults.py", "simulate")}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name.split(".")[1] for name in found if name.startswith("speclearn.") and name.count(".") >= 1}


def _system_edges() -> dict[tuple[str, str], list[str]]:
    edges = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2 or parts[0] not in SYSTEM_FOLDERS:
            continue
        module = "/".join(parts)
        composer = any(path.stem == c or path.stem.endswith(f"_{c}") for c in COMPOSERS) or parts[0] == "auto"
        for target in _imports(path) & SYSTEM_FOLDERS - {parts[0]}:
            if not composer and (module, target) not in ALLOWED:
                edges[(parts[0], target)].append(module)
    return edges


def test_no_system_imports_another():
    assert not _system_edges(), dict(_system_edges())


def test_core_imports_no_system():
    core = ("core", "io", "models", "preprocessing", "physics")
    offenders = [str(path.relative_to(PACKAGE)) for folder in core for path in (PACKAGE / folder).rglob("*.py")
                 if _imports(path) & SYSTEM_FOLDERS]
    assert not offenders, offenders
