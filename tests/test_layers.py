"""Layers: the app (CLI, Hydra config, W&B, bench, report, prune) sits above the library.

Every module under eyejax/ is parsed (imports inside functions included) and checked for
* no library module importing an app module, and no cycle among the app modules;
* no module importing a private name (``_x``) of another eyejax module, either as
  ``from eyejax.m import _x`` or as ``m._x`` on an imported eyejax module;
* the functional simulation (eyejax/sim/) sharing only the pytrees and data formats with the
  analytical model, so the two check each other independently.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "eyejax"

# the app layer: everything under eyejax/app/

# what the simulation may import: pytrees (architecture, workload, sparsity, mappings) and the
# sparse data formats; never the analytical model (eyejax.dataflow.* but its mapping pytrees)
SIM_MAY_IMPORT = ("eyejax.sim", "eyejax.arch", "eyejax.workload", "eyejax.sparsity",
                  "eyejax.dataflow.mapping", "eyejax.sparse")


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


# module-name entry points that only forward to a console command (python -m eyejax.report)
APP_SHIMS = ("eyejax.report",)


def is_app(name: str) -> bool:
    return name == "eyejax.app" or name.startswith("eyejax.app.") or name in APP_SHIMS


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mod: str, path: Path):
    """[(imported module, name or None, line)] and the private attribute uses, for one module."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    known = modules()
    out, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, None, node.lineno))
                if a.name.startswith("eyejax"):
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            src = resolve(mod, is_pkg, node)
            for a in node.names:
                sub = f"{src}.{a.name}"
                if sub in known:  # from eyejax.sweep import cli: a module
                    out.append((sub, None, node.lineno))
                    aliases[a.asname or a.name] = sub
                else:
                    out.append((src, a.name, node.lineno))
    attrs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            chain, v = [node.attr], node.value
            while isinstance(v, ast.Attribute):
                chain.append(v.attr)
                v = v.value
            if isinstance(v, ast.Name) and v.id in aliases:
                target = ".".join([aliases[v.id]] + chain[:0:-1])
                attrs.append((target, node.attr, node.lineno))
    return out, attrs


def test_library_never_imports_the_app():
    bad = []
    for mod, path in modules().items():
        if is_app(mod):
            continue
        for target, name, line in imports(mod, path)[0]:
            full = f"{target}.{name}" if name else target
            if is_app(target) or is_app(full):
                bad.append(f"{mod}:{line} imports {full}")
    assert not bad, "library modules import the app:\n" + "\n".join(bad)


def test_app_modules_import_each_other_one_way():
    """Within the app the imports form no cycle (cli -> sweep.cli -> logging_wandb, never back)."""
    mods = modules()
    graph = {}
    for mod, path in mods.items():
        if not is_app(mod):
            continue
        deps = set()
        for target, name, _ in imports(mod, path)[0]:
            full = f"{target}.{name}" if name else target
            dep = full if full in mods else target
            if is_app(dep) and dep != mod and dep in mods:
                deps.add(dep)
        graph[mod] = deps

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for d in graph.get(node, ()):
                if d == start:
                    return path + [d]
                if d not in seen:
                    seen.add(d)
                    stack.append((d, path + [d]))
        return None

    cycles = [c for c in map(cycle_from, graph) if c]
    assert not cycles, "app modules import each other in a cycle:\n" + "\n".join(
        " -> ".join(c) for c in cycles)


def test_no_private_names_across_modules():
    bad = []
    for mod, path in modules().items():
        found, attrs = imports(mod, path)
        for target, name, line in found + attrs:
            if not target.startswith("eyejax") or target == mod or not name:
                continue
            if name.startswith("_") and not name.startswith("__"):
                bad.append(f"{mod}:{line} uses {target}.{name}")
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


def test_simulation_shares_only_the_pytrees():
    bad = []
    for mod, path in modules().items():
        if not mod.startswith("eyejax.sim"):
            continue
        found, _ = imports(mod, path)
        for target, _name, line in found:
            if target.startswith("eyejax") and target != "eyejax" and not any(
                    target == ok or target.startswith(ok + ".") for ok in SIM_MAY_IMPORT):
                bad.append(f"{mod}:{line} imports {target}")
    assert not bad, "the simulation reaches into the model:\n" + "\n".join(bad)
