#!/usr/bin/env python3
"""Files over 800 lines and functions over 100 lines, outside tests (crates/*/src, bench/src).

Usage: scripts/sizes.py [REPO_ROOT]. A file's trailing top-level `#[cfg(test)] mod` is not
counted, nor are `flow_tests.rs`/`tests.rs` files; a function runs from its `fn` line to the
closing brace at the same indentation (rustfmt's layout)."""
import re, sys, pathlib
root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
fn_re = re.compile(r'^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')
big_files, big_fns = [], []
for p in sorted(list(root.glob('crates/*/src/**/*.rs')) + list(root.glob('bench/src/**/*.rs'))):
    if 'flow_tests' in p.name or p.name == 'tests.rs':
        continue
    lines = p.read_text().splitlines()
    # cut a trailing #[cfg(test)] module
    n = len(lines)
    for i, l in enumerate(lines):
        if l.strip() == '#[cfg(test)]' and i + 1 < n and re.match(r'^mod \w+', lines[i+1].strip()) and not lines[i].startswith(' '):
            n = i; break
    if n > 800:
        big_files.append((n, str(p.relative_to(root))))
    i = 0
    while i < n:
        m = fn_re.match(lines[i])
        decl = False
        if m:
            k = i
            while k < n and '{' not in lines[k] and not lines[k].rstrip().endswith(';'):
                k += 1
            decl = k < n and '{' not in lines[k]
        if m and not decl:
            ind = m.group(1)
            j = i
            # find the closing brace at same indentation
            while j < n and not (lines[j].startswith(ind + '}') and len(lines[j]) - len(lines[j].lstrip()) == len(ind)):
                j += 1
            length = j - i + 1
            if length > 100:
                big_fns.append((length, f'{p.relative_to(root)}:{i+1} {m.group(8)}'))
            i += 1
        else:
            i += 1
print('files over 800 lines (non-test part):')
for n, f in big_files: print(f'  {n:5} {f}')
print('functions over 100 lines (outside tests):')
for n, f in sorted(big_fns, reverse=True): print(f'  {n:5} {f}')
