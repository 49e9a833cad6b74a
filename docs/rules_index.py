#!/usr/bin/env python3
"""Refreshes the "tested in" column of docs/RULES.md from the Gherkin tags under features/ and
the Rust tests named after a rule (`h2b_...`, `gw1_x2_...`). The rule text and status columns
are written by hand and kept. `tests/rules_index.rs` fails when the page is out of date.

    python3 docs/rules_index.py
"""
import glob, os, re

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
# collect evidence
tags={}
for f in sorted(glob.glob('features/*.feature')):
    for l in open(f):
        for full,t in re.findall(r'@(([A-Z]+[0-9]+)[a-d]?)\b',l): tags.setdefault(t,{}).setdefault(f,set()).add(full)
fns={}
for f in sorted(glob.glob('tests/*.rs'))+sorted(glob.glob('src/**/*.rs',recursive=True)):
    for m in re.finditer(r'fn ([a-z][a-z0-9_]*)\(',open(f).read()):
        n=m.group(1)
        for tok in n.split('_'):
            mm=re.fullmatch(r'(st|gw|c|h|s|b|o|x|m|l)([0-9]{1,2})[a-d]?',tok)
            if not mm: break
            rid=mm.group(1).upper()+mm.group(2)
            fns.setdefault(rid,[]).append((f,n))

lines = open('docs/RULES.md').read().split('\n')
for i, line in enumerate(lines):
    if not line.startswith('| ') or line.startswith('| id'):
        continue
    cells = line.split(' | ')
    rid = cells[0][2:]
    where = []
    for f, fulls in sorted(tags.get(rid, {}).items()):
        where.append(f'[{os.path.basename(f)}](../{f}) ' + ' '.join(f'`@{t}`' for t in sorted(fulls)))
    byfile = {}
    for f, n in fns.get(rid, []):
        byfile.setdefault(f, []).append(n)
    for f, ns in byfile.items():
        where.append(f'[{f.split("/", 1)[1]}](../{f}): ' + ', '.join(f'`{n}`' for n in ns))
    cells[-1] = ('<br>'.join(where) if where else '—') + ' |'
    lines[i] = ' | '.join(cells)
open('docs/RULES.md', 'w').write('\n'.join(lines))
