"""The layering the README's Layout section states is the code's: every module of the
package (and every Triton kernel) imports only from its own layer or the layers below.
Imports inside functions count too: a lazy import is still a dependency."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom up, as in the README's Layout table. A module belongs to the first prefix it matches.
LAYERS = [
    ["orthocore.kernels", "orthocore.formulas", "orthocore.checks", "orthocore.modes", "orthocore._io", "orthocore.digests",
     "orthocore.settings", "orthocore.draws", "orthocore.progress", "orthocore.interrupts", "orthocore.locks"],
    ["orthocore.dispatch", "orthocore.ops"],
    ["orthocore.runtime", "orthocore.distributed", "orthocore.workers", "orthocore.gradients", "orthocore.models",
     "orthocore.data", "orthocore.checkpoint", "orthocore.model_specs", "orthocore.metrics"],
    ["orthocore.train"],
    ["orthocore.attacks"],
    ["orthocore.defenses"],
    ["orthocore.evaluate", "orthocore.gradcam"],
    ["orthocore.report", "orthocore.plots"],
    ["orthocore.study"],
    ["orthocore.cli", "orthocore.__main__"],
]  # fmt: skip


def _layer(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None  # the package root (orthocore/__init__.py) or a third-party module


def _modules():
    for path in sorted((ROOT / "orthocore").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path
    for path in sorted((ROOT / "kernels").glob("*.py")):
        yield "orthocore.kernels" + ("" if path.stem == "__init__" else f".{path.stem}"), path


def _imports(path: Path, package: str):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            yield from ([f"{base}.{alias.name}" for alias in node.names] if base == "orthocore" else [base])


MODULES = list(_modules())


def test_every_module_has_a_layer():
    assert [name for name, _ in MODULES if name != "orthocore" and _layer(name) is None] == []


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_imports_point_down(name, path):
    own = _layer(name)
    if own is None:
        return  # the package root re-exports the public API
    package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
    upward = [
        target for target in _imports(path, package)
        if target.startswith("orthocore") and (_layer(target) or 0) > own
    ]  # fmt: skip
    assert upward == [], f"{name} (layer {own}) imports from higher layers: {upward}"


def test_kernels_import_nothing_from_ops():
    for name, path in MODULES:
        if name.startswith("orthocore.kernels"):
            assert not any(t.startswith("orthocore.ops") for t in _imports(path, "orthocore.kernels")), name
