"""The packages of casty meet at declared seams: no module reaches into another package's privates.

A package here is a directory under ``casty/`` (``actors``, ``remote``, ``cluster``, ...); the
modules directly in ``casty/`` (``config``, ``testkit``, ``errors``, ...) form the root package.
Two rules are checked over the source with ``ast``:

* imports: a module may not import another package's private module (any part of the dotted
  path after the package starting with ``_``) or a ``_name`` from it. ``casty._fastpath``
  itself is the selector of the compiled hot paths and its public names are fine; its twins
  (``casty._fastpath._frame_py``, ...) are not.
* attributes: ``x._name`` on anything but ``self``/``cls``/``super()`` is refused when
  ``_name`` is defined (as a method, class attribute, ``self._name = ...`` or module-level
  name) only in other packages. That catches ``system._cells``, ``ref._target`` or
  ``ctx.system._dead_letter`` outside ``casty.actors`` without a type checker; a name that the
  accessing package defines too cannot be told apart and is left to review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

CASTY = Path(__file__).resolve().parents[2] / "casty"
ROOT = "<root>"

# Exceptions to the rule, each with its reason (none today; a stale entry fails a test below).
ALLOWED_IMPORTS: set[tuple[str, str]] = set()


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    found: dict[str, tuple[Path, ast.Module]] = {}
    for path in sorted(CASTY.rglob("*.py")):
        parts = path.relative_to(CASTY.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = (path, ast.parse(path.read_text(), str(path)))
    return found


def _package(module: str) -> str:
    """``casty.remote.transport`` -> ``remote``; modules directly in casty/ -> the root."""
    parts = module.split(".")
    if len(parts) >= 2 and (CASTY / parts[1]).is_dir():
        return parts[1]
    return ROOT


def _is_package(module: str) -> bool:
    return (CASTY.parent / module.replace(".", "/") / "__init__.py").exists()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_module_part(target: str) -> bool:
    """True when ``target`` names a private module inside a casty package."""
    parts = target.split(".")
    if parts[0] != "casty" or len(parts) < 2 or _package(target) == ROOT:
        return False
    return any(p.startswith("_") for p in parts[2:])


def import_violations(modules: dict[str, tuple[Path, ast.Module]]) -> list[str]:
    found: list[str] = []
    for module, (path, tree) in modules.items():
        here = _package(module)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pairs = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(module, node)
                pairs = [(target, alias.name) for alias in node.names]
            else:
                continue
            for target, name in pairs:
                if not target.startswith("casty.") or _package(target) in (here, ROOT):
                    continue
                if (module, target) in ALLOWED_IMPORTS:
                    continue
                where = f"{path.relative_to(CASTY.parent)}:{node.lineno}"
                if _private_module_part(target):
                    found.append(f"{where}: {module} imports private module {target}")
                elif name is not None and name.startswith("_"):
                    found.append(f"{where}: {module} imports private name {name} from {target}")
    return found


def _defined_private_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
            names.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str))
    return {n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))}


def _is_own_receiver(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def attribute_violations(modules: dict[str, tuple[Path, ast.Module]]) -> list[str]:
    defined: dict[str, set[str]] = defaultdict(set)
    for module, (_path, tree) in modules.items():
        for name in _defined_private_names(tree):
            defined[name].add(_package(module))
    found: list[str] = []
    for module, (path, tree) in modules.items():
        here = _package(module)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__") and node.attr.endswith("__"):
                continue
            owners = defined.get(node.attr)
            if not owners or here in owners or _is_own_receiver(node.value):
                continue
            where = f"{path.relative_to(CASTY.parent)}:{node.lineno}"
            found.append(f"{where}: {module} uses {ast.unparse(node)} (private to {', '.join(sorted(owners))})")
    return found


def test_no_module_imports_another_packages_private_names() -> None:
    assert import_violations(_modules()) == []


def test_no_module_touches_another_packages_private_attributes() -> None:
    assert attribute_violations(_modules()) == []


def test_allowed_imports_are_still_needed() -> None:
    """An allow-list entry whose import is gone must be removed, so the list only shrinks."""
    modules = _modules()
    used: set[tuple[str, str]] = set()
    for module, (_path, tree) in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                used.add((module, _absolute(module, node)))
            elif isinstance(node, ast.Import):
                used.update((module, alias.name) for alias in node.names)
    assert used >= ALLOWED_IMPORTS, ALLOWED_IMPORTS - used


def test_the_checks_catch_what_they_are_for() -> None:
    """The rules themselves, on made-up modules: each kind of reach-in is reported."""
    source = {
        "casty.streams.bad": (
            "from casty.actors.system import _DeadTarget\n"
            "from casty.cluster._membership import Member\n"
            "import casty._fastpath._frame_py\n"
            "from casty._fastpath import FrameDecoder\n"
            "from casty.errors import CastyError\n"
            "def f(ctx, ref, system):\n"
            "    ctx.system._dead_letter(1, None, 'x')\n"
            "    return ref._target, system._cells\n"
        ),
        "casty.actors.fine": (
            "class A:\n"
            "    __slots__ = ('_target',)\n"
            "    def _dead_letter(self): self._cells = {}\n"
            "def g(ref): return ref._target\n"
        ),
    }
    modules = {
        name: (CASTY / (name.split(".", 1)[1].replace(".", "/") + ".py"), ast.parse(text))
        for name, text in source.items()
    }
    imports = import_violations(modules)
    assert len(imports) == 3, imports
    assert any("_DeadTarget" in v for v in imports)
    assert any("casty.cluster._membership" in v for v in imports)
    assert any("casty._fastpath._frame_py" in v for v in imports)
    attributes = attribute_violations(modules)
    assert sorted(v.rsplit(" uses ", 1)[1].split(" (")[0] for v in attributes) == [
        "ctx.system._dead_letter",
        "ref._target",
        "system._cells",
    ], attributes
