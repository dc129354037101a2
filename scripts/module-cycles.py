#!/usr/bin/env python3
"""Lists import cycles between the top-level modules of each crate (`use crate::a` in module b
is an edge b -> a; `lib.rs`/`main.rs` are left out). Exits 1 when a cycle exists.

Usage: python3 scripts/module-cycles.py"""
import pathlib, re, sys

def top_module(src, path):
    rel = path.relative_to(src).parts
    name = rel[0][:-3] if rel[0].endswith('.rs') else rel[0]
    return None if name in ('lib', 'main') else name

def graph(src):
    edges = {}
    for path in sorted(src.rglob('*.rs')):
        m = top_module(src, path)
        if m is None:
            continue
        # Code only: a doc comment naming `crate::x` is not an import.
        text = re.sub(r'//.*', '', path.read_text())
        for dep in re.findall(r'\bcrate::(\w+)', text):
            is_module = (src / f'{dep}.rs').exists() or (src / dep).is_dir()
            if dep != m and is_module:
                edges.setdefault(m, set()).add(dep)
    return edges

def cycles(edges):
    found, state = [], {}
    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for d in sorted(edges.get(n, ())):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[n] = 2
    for n in sorted(edges):
        if n not in state:
            visit(n, [])
    return found

bad = False
for crate in ('engine', 'harness'):
    cs = cycles(graph(pathlib.Path(crate) / 'src'))
    for c in cs:
        print(f'{crate}: cycle ' + ' -> '.join(c))
    bad |= bool(cs)
    if not cs:
        print(f'{crate}: no import cycle between top-level modules')
sys.exit(1 if bad else 0)
