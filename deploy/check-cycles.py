#!/usr/bin/env python3
"""Import cycles between the modules of a crate's library (deploy/check-cycles.sh runs it).

Every module of the library is a node: a file module (`src/a.rs`, `src/a/mod.rs`) or an
inline `mod x { ... }`. An edge a -> b is a path in a's own code that names an item of b:
`use crate::b::..`, `use super::..`, `use self::..`, a `use` of a child module by its bare
name, and the same paths written inline (`crate::b::f()`). Declaring a child (`mod b;`) is
not an edge: a parent owning a child is not the parent using it. Test code (`#[cfg(test)]`
modules and items) is left out, as `cargo modules dependencies --lib` leaves it out.

Exit status 1 and every cycle printed (module names and the lines that close it) when the
graph has one; 0 and a one-line summary otherwise.

`check-cycles.py --dot FILE NAME` checks a module graph written by cargo-modules instead
(`cargo modules dependencies --lib --no-fns --no-types --no-traits --no-externs --no-sysroot
--no-owns`, its "uses" edges between modules), as a second opinion; see deploy/check-cycles.sh.
"""

import re
import sys
from pathlib import Path


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals (keeping newlines), so braces and
    paths inside them are never read as code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


CFG_TEST = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?")


def drop_test_code(code):
    """Removes `#[cfg(test)]` items: inline modules, `mod x;` declarations, functions, uses."""
    while True:
        m = CFG_TEST.search(code)
        if not m:
            return code
        rest = code[m.end() :]
        semi = rest.find(";")
        brace = rest.find("{")
        if brace >= 0 and (semi < 0 or brace < semi):
            end = matching_brace(code, m.end() + brace) + 1
        else:
            end = m.end() + semi + 1
        code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start() : end]) + code[end:]


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (aliases and globs kept as paths)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)  # `x as y` names x
    tree = re.sub(r"\s+", "", tree)
    paths = []

    def walk(prefix, s):
        # Split s at top-level commas.
        depth, start, parts = 0, 0, []
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = part[:brace].rstrip(":")
                walk(prefix + ([head] if head else []), part[brace + 1 : part.rfind("}")])
            else:
                paths.append("::".join(prefix + [part]))

    walk([], tree)
    return paths


class Module:
    def __init__(self, name, code, file, children):
        self.name = name  # ('core', 'session'); () is the crate root
        self.code = code
        self.file = file
        self.children = children  # child module names declared in it


def load_modules(src_root):
    """Every non-test module of the library rooted at src_root/lib.rs."""
    modules = {}

    def visit(name, file, code, directory):
        code = drop_test_code(code)
        children = []
        # Inline modules first: their code belongs to them, not to this module.
        while True:
            m = re.search(r"\b(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", code)
            if not m:
                break
            end = matching_brace(code, m.end() - 1)
            child = m.group(1)
            children.append(child)
            visit(name + (child,), file, code[m.end() : end], directory / child)
            code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start() : end + 1]) + code[end + 1 :]
        for m in re.finditer(r"\b(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code):
            child = m.group(1)
            children.append(child)
            path_attr = None
            for candidate in (directory / f"{child}.rs", directory / child / "mod.rs"):
                if candidate.exists():
                    path_attr = candidate
                    break
            if path_attr is None:
                sys.exit(f"check-cycles: module {'::'.join(name + (child,))} has no file under {directory}")
            raw = strip_comments_and_strings(path_attr.read_text())
            visit(name + (child,), path_attr, raw, path_attr.parent if path_attr.name == "mod.rs" else path_attr.with_suffix(""))
        modules[name] = Module(name, code, file, children)

    lib = src_root / "lib.rs"
    visit((), lib, strip_comments_and_strings(lib.read_text()), src_root)
    return modules


def resolve(path, current, modules):
    """The module a path names an item of (the longest module prefix), or None if the path
    leaves the crate."""
    segments = path.split("::")
    if segments[0] == "crate":
        base, rest = (), segments[1:]
    elif segments[0] in ("self", "super"):
        base, rest = current, segments
        while rest and rest[0] in ("self", "super"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif segments[0] in modules[current].children:
        base, rest = current, segments
    else:
        return None
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
        else:
            break
    return target


def edges_of(module, modules):
    found = {}
    code = module.code
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        line = code.count("\n", 0, m.start()) + 1
        for path in expand_use_tree(m.group(1)):
            target = resolve(path, module.name, modules)
            if target is not None and target != module.name:
                found.setdefault(target, f"{module.file}:{line}: use {path}")
    for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", code):
        line = code.count("\n", 0, m.start()) + 1
        target = resolve(m.group(1), module.name, modules)
        if target is not None and target != module.name:
            found.setdefault(target, f"{module.file}:{line}: {m.group(1)}")
    return found


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def show(name):
    return "crate" if not name else "::".join(name)


def check_dot(path, name):
    """Cycles in a cargo-modules dot graph (module nodes, "uses" edges)."""
    graph = {}
    for a, b in re.findall(r'"([^"]+)" -> "([^"]+)"', Path(path).read_text()):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    bad = cycles(graph)
    edges = sum(len(v) for v in graph.values())
    if not bad:
        print(f"{name} (cargo-modules): {len(graph)} modules, {edges} use edges, no cycle")
        return 0
    print(f"{name} (cargo-modules): {len(bad)} import cycle(s):")
    for component in bad:
        members = set(component)
        print("  cycle: " + ", ".join(component))
        for a in component:
            for b in graph[a]:
                if b in members:
                    print(f"    {a} -> {b}")
    return 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--dot":
        return check_dot(sys.argv[2], sys.argv[3])
    if len(sys.argv) != 2:
        sys.exit("usage: check-cycles.py CRATE_DIR | check-cycles.py --dot FILE NAME")
    crate = Path(sys.argv[1])
    modules = load_modules(crate / "src")
    graph = {}
    evidence = {}
    for name, module in modules.items():
        found = edges_of(module, modules)
        graph[name] = sorted(found)
        for target, where in found.items():
            evidence[(name, target)] = where
    bad = cycles(graph)
    edges = sum(len(v) for v in graph.values())
    if not bad:
        print(f"{crate}: {len(modules)} modules, {edges} import edges, no cycle")
        return 0
    print(f"{crate}: {len(bad)} import cycle(s) among {len(modules)} modules:")
    for component in bad:
        members = set(component)
        print("  cycle: " + ", ".join(show(m) for m in component))
        for a in component:
            for b in graph[a]:
                if b in members:
                    print(f"    {show(a)} -> {show(b)}   ({evidence[(a, b)]})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
