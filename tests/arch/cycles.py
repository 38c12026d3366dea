#!/usr/bin/env python3
"""Import circles in src/: the include graph per module and per folder, and its cycles.

A module is a folder's x.c and x.h taken together (src/controller/api.{c,h} is
"controller/api"). A private header belongs to the module it serves: a header with no .c
of its own that includes y.h and is included by y.c (securitychip/chip_internal.h, the
VPC core's cards/vpc/core.h) is part of module y. Module A depends on module B when a file of A includes "B.h"
(includes are written relative to src/, e.g. "lib/util.h"). Folder F depends on folder G
when a module of F depends on a module of G. A cycle is a strongly connected component
of more than one node (a module including its own header does not count).

Usage: cycles.py [SRC]      prints every cycle; exit 1 if there is one, 0 if none.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_graph(src):
    graph = {}
    for f in sorted(src.rglob("*.[ch]")):
        mod = str(f.relative_to(src).with_suffix(""))
        deps = graph.setdefault(mod, set())
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            target = src / inc
            if not target.is_file():
                target = f.parent / inc  # a header next to the file
            if not target.is_file():
                continue
            dep = str(target.resolve().relative_to(src.resolve()).with_suffix(""))
            if dep != mod:
                deps.add(dep)
    return merge_private(src, graph)


def merge_private(src, graph):
    """Folds each private header (see above) into the module it serves."""
    owner = {}
    for mod, deps in graph.items():
        if (src / (mod + ".c")).is_file():
            continue
        for d in deps:
            if (src / (d + ".c")).is_file() and mod in graph.get(d, ()):
                owner[mod] = d
    merged = {}
    for mod, deps in graph.items():
        m = owner.get(mod, mod)
        merged.setdefault(m, set()).update(owner.get(d, d) for d in deps)
    for m, deps in merged.items():
        deps.discard(m)
    return merged


def folder_graph(graph):
    folders = {}
    for mod, deps in graph.items():
        fold = mod.rsplit("/", 1)[0] if "/" in mod else "."
        out = folders.setdefault(fold, set())
        for d in deps:
            dfold = d.rsplit("/", 1)[0] if "/" in d else "."
            if dfold != fold:
                out.add(dfold)
    return folders


def cycles(graph):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def edges_within(graph, comp):
    s = set(comp)
    return [f"{a} -> {b}" for a in comp for b in sorted(graph.get(a, ())) if b in s]


def main():
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    mods = module_graph(src)
    found = 0
    for name, graph in (("module", mods), ("folder", folder_graph(mods))):
        cyc = cycles(graph)
        print(f"{name}s: {len(graph)}, cycles: {len(cyc)}")
        for comp in cyc:
            found += 1
            print(f"  cycle: {' '.join(comp)}")
            for e in edges_within(graph, comp):
                print(f"    {e}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
