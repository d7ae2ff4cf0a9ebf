"""The layer holds what the functions use, and nothing else.

Every module of the ``mangaassist`` package (what scripts/build.py puts in the layer) must be
reached from some ``functions/<name>/handler.py`` by its imports, including those made inside
functions (modulefinder reads every code object's imports, so a lazy import counts).
Development-only code lives in scripts/mangaassist_dev and never reaches the layer.
"""
from __future__ import annotations

import modulefinder
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared" / "python"


def layer_modules() -> set[str]:
    modules = set()
    for path in (LAYER / "mangaassist").rglob("*.py"):
        parts = path.relative_to(LAYER).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def reached_from_handlers() -> set[str]:
    reached: set[str] = set()
    for handler in sorted((ROOT / "functions").glob("*/handler.py")):
        finder = modulefinder.ModuleFinder(path=[str(LAYER)], excludes=["boto3", "botocore", "aws_lambda_powertools",
                                                                        "jsonschema", "requests", "nacl"])
        finder.run_script(str(handler))
        reached |= {name for name in finder.modules if name == "mangaassist" or name.startswith("mangaassist.")}
    return reached


def test_every_layer_module_is_imported_by_some_handler():
    unused = layer_modules() - reached_from_handlers()
    assert not unused, f"in the layer but imported by no handler (move to scripts/mangaassist_dev?): {sorted(unused)}"


def test_development_code_is_not_in_the_layer():
    assert not (LAYER / "mangaassist_dev").exists()
    for path in (LAYER / "mangaassist").rglob("*.py"):
        assert "mangaassist_dev" not in path.read_text(encoding="utf-8"), path
