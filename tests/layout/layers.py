"""The layers of `shared/src` and the imports between its modules.

Reads every module's `crate::…` and `super::…` paths (test code excluded: what follows a
`#[cfg(test)]` line, and `*_tests.rs` files), resolves each to the module that defines the name
(following `pub use` re-exports), and reports: import cycles between modules, imports that point
up the layers, and modules below `http` that name `lambda_http`. Run as a script, it prints the
module list with its layer and non-test line count, then the findings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "shared" / "src"

# Lowest first: a module may import from its own layer and the ones before it.
LAYERS = ["domain", "adapters", "token", "tenant", "ops", "http", "runtime"]
# Where lambda_http may be named.
HTTP_LAYERS = {"http", "runtime"}

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)\}", re.S)
REEXPORT = re.compile(r"^\s*pub use\s+([^;]+);", re.M)


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts)


def non_test(text: str) -> str:
    """The text before the first `#[cfg(test)]` line (tests sit at the end of a file)."""
    m = re.search(r"^\s*#\[cfg\(test\)\]", text, re.M)
    return text[: m.start()] if m else text


def load(src: Path = SRC) -> dict[str, str]:
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        if path.name.endswith("_tests.rs"):
            continue
        modules[module_name(path, src)] = non_test(path.read_text())
    return modules


def layer(module: str) -> str:
    return module.split("::")[0] if module else "lib"


def reexports(modules: dict[str, str]) -> dict[tuple[str, str], str]:
    """(module, name) -> the module a `pub use` in `module` takes `name` from."""
    out = {}
    for mod, text in modules.items():
        for m in REEXPORT.finditer(text):
            spec = " ".join(m.group(1).split())
            base, _, group = spec.partition("::{")
            names = [n.strip() for n in group.rstrip("}").split(",")] if group else [base.split("::")[-1]]
            prefix = base if group else "::".join(base.split("::")[:-1])
            for name in filter(None, names):
                name = name.split(" as ")[-1].strip()
                target = absolute(mod, prefix, is_use=True)
                if target is not None:
                    out[(mod, name)] = "::".join(target)
    return out


def absolute(mod: str, path: str, is_use: bool = False) -> list[str] | None:
    """Segments of `path` as seen from `mod`: `crate::a::b`, `super::x`, or (in a `pub use`) a
    path relative to `mod` such as `child::Name`."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return []
    here = mod.split("::") if mod else []
    if segs[0] == "crate":
        return segs[1:]
    if segs[0] == "super":
        # `super` of `a::b` (a/b.rs) is `a`; of `a` (a/mod.rs) the crate.
        return here[:-1] + segs[1:]
    if segs[0] == "self":
        return here + segs[1:]
    if is_use:
        return here + segs
    return None


def reexports_child(mod: str, spec: str) -> bool:
    here = mod.split("::") if mod else []
    segs = absolute(mod, spec.split("::{")[0].strip(), is_use=True) or []
    return len(segs) > len(here) and segs[: len(here)] == here


def resolve(segs: list[str], modules: dict[str, str], rx: dict[tuple[str, str], str]) -> str | None:
    """The module that defines what `segs` names: the longest module prefix, followed through a
    re-export of the next segment when that prefix re-exports it."""
    for n in range(len(segs), -1, -1):
        prefix = "::".join(segs[:n])
        if prefix in modules:
            if n < len(segs) and (prefix, segs[n]) in rx:
                target = rx[(prefix, segs[n])]
                return resolve(target.split("::") + segs[n + 1 :], modules, rx) or target
            return prefix
    return None


def edges(modules: dict[str, str]) -> dict[str, set[str]]:
    rx = reexports(modules)
    out: dict[str, set[str]] = {m: set() for m in modules}
    for mod, text in modules.items():
        # Re-exports of a module's own children are its face, not its dependencies; any other
        # `pub use` is a use.
        body = REEXPORT.sub(lambda m: "" if reexports_child(mod, m.group(1)) else f"use {m.group(1)};", text)
        paths = []
        for g in USE_GROUP.finditer(body):
            root, base, names = g.groups()
            for name in names.split(","):
                name = name.strip().split(" as ")[0].strip()
                if name == "self":
                    paths.append(f"{root}{base}")
                elif name:
                    paths.append(f"{root}{base}::{name.split('::')[0]}" if "::" not in name else f"{root}{base}::{name}")
        body = USE_GROUP.sub("", body)
        paths += [m.group(1) + m.group(2) for m in PATH.finditer(body)]
        for p in paths:
            segs = absolute(mod, p)
            if segs is None:
                continue
            target = resolve(segs, modules, rx)
            if target is not None and target != mod and target != "":
                out[mod].add(target)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a lower layer into a higher one."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    out = []
    for mod, targets in sorted(graph.items()):
        if layer(mod) not in rank:
            continue
        for t in sorted(targets):
            if layer(t) in rank and rank[layer(t)] > rank[layer(mod)]:
                out.append(f"{mod} -> {t}")
    return out


def http_below(modules: dict[str, str]) -> list[str]:
    return [
        m
        for m, text in sorted(modules.items())
        if layer(m) not in HTTP_LAYERS and layer(m) != "lib" and re.search(r"\blambda_http\b", text)
    ]


def report(src: Path = SRC) -> tuple[list[list[str]], list[str], list[str]]:
    modules = load(src)
    graph = edges(modules)
    return cycles(graph), upward(graph), http_below(modules)


def main() -> int:
    modules = load()
    graph = edges(modules)
    for mod in sorted(modules, key=lambda m: (LAYERS.index(layer(m)) if layer(m) in LAYERS else -1, m)):
        lines = modules[mod].count("\n")
        print(f"{layer(mod):8} {lines:4}  {mod or 'lib'}")
    found, up, below = cycles(graph), upward(graph), http_below(modules)
    print(f"\ncycles: {len(found)}")
    for c in found:
        print("  " + " <-> ".join(c))
    print(f"imports pointing up the layers: {len(up)}")
    for u in up:
        print("  " + u)
    print(f"modules below http naming lambda_http: {len(below)}")
    for b in below:
        print("  " + b)
    return 1 if found or up or below else 0


if __name__ == "__main__":
    sys.exit(main())
