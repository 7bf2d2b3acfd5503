#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

Cargo already refuses cycles between crates; inside a crate nothing does. This reads every
`.rs` file under each crate's `src/` as text, resolves its `use crate::…`, `use super::…`,
`use self::…` and inline `crate::…` / `super::…` paths to the module files they name, and reports
strongly connected components of two graphs:

- files (modules) of every crate: a cycle is an error (exit status 1): two files that each
  need the other (a module using its own ancestors, `super::X`, is nesting, not a cycle);
- top-level modules (`api`, `auth`, `detect`, …): a cycle is an error in the binary crate,
  whose top-level modules are its rooms; in a library crate it is printed as a note.

Unit-test modules (`#[cfg(test)] mod tests`, `tests/` folders under `src/`) are left out:
tests may reach anywhere.

Usage: scripts/module-cycles.py [WORKSPACE_DIR]
"""

import re
import sys
from pathlib import Path

USE_RE = re.compile(r"\buse\s+([^;]+);", re.S)
INLINE_RE = re.compile(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)")
TEST_MOD_RE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", re.S)
CFG_TEST_MOD_DECL_RE = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*;")


def module_path(src: Path, file: Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_test_modules(text: str) -> str:
    """Drops `#[cfg(test)] mod x { … }` blocks (brace-matched)."""
    out = []
    pos = 0
    for m in TEST_MOD_RE.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        depth = 1
        i = m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        pos = i
    out.append(text[pos:])
    return "".join(out)


def expand_use(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas\w+", "", tree)

    def expand(prefix: str, s: str) -> list:
        # split s at top-level commas
        items, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            items.append(cur)
        paths = []
        for item in items:
            if "{" in item:
                head, rest = item.split("{", 1)
                paths += expand(prefix + head, rest[: rest.rfind("}")])
            elif item:
                paths.append(prefix + item)
        return paths

    return expand("", tree)


def resolve(path: str, here: tuple, modules: set):
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        base = list(here)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super" and base:
                base.pop()
            segs = segs[1:]
    else:
        return None
    full = base + segs
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in modules:
            return tuple(full[:n])
    return None


def sccs(graph: dict) -> list:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def crate_graphs(src: Path):
    files = {}
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).parts
        if "tests" in rel[:-1] or f.name == "tests.rs":
            continue
        files[module_path(src, f)] = f
    modules = set(files)
    top, by_file, why = {}, {}, {}
    for mod, f in files.items():
        text = strip_test_modules(strip_comments(f.read_text()))
        paths = []
        for m in USE_RE.finditer(text):
            paths += expand_use(m.group(1))
        paths += INLINE_RE.findall(text)
        for p in paths:
            target = resolve(p, mod, modules)
            if target is None or target == mod or not mod or not target:
                continue
            # A module using its own ancestors (`super::X`, the parent's re-exports) is how
            # Rust modules nest, not a cycle.
            if mod[: len(target)] == target:
                continue
            by_file.setdefault(mod, set()).add(target)
            why.setdefault((mod, target), True)
            if mod[0] != target[0]:
                top.setdefault(mod[0], set()).add(target[0])
                why.setdefault((mod[0], target[0]), set()).add(
                    "/".join(mod) + " -> " + "::".join(target)
                )
    return top, by_file, why


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    crates = [p.parent for p in root.glob("*/src") if (p.parent / "Cargo.toml").exists()]
    binary = root if (root / "src").is_dir() else None
    if binary:
        crates.append(root)
    failed = False
    for crate in sorted(set(crates)):
        top, by_file, why = crate_graphs(crate / "src")
        name = crate.name if crate != root else "thingward (src/)"
        for comp in sccs(by_file):
            failed = True
            print(f"{name}: files that import each other: " + ", ".join("/".join(c) for c in comp))
        for comp in sccs(top):
            if crate == binary:
                failed = True
                print(f"{name}: module cycle: {' <-> '.join(comp)}")
            else:
                print(f"{name}: (note) top-level modules that import each other: {' <-> '.join(comp)}")
            for a in comp:
                for b in comp:
                    for w in sorted(why.get((a, b), ()))[:3]:
                        print(f"    {w}")
    if not failed:
        print("no module cycle: no file imports itself through others in any crate, and the binary's modules form no cycle")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
