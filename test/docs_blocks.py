#!/usr/bin/env python3
"""The docs suite's two halves (test/docs.sh runs them).

  docs_blocks.py script FILE.md OUT.sql   writes the psql script of FILE.md's ```sql blocks,
                                           in order, each after a marker line
  docs_blocks.py check FILE.md OUT.log    judges psql's output of that script, block by
                                           block; prints one line per block and
                                           "docs_file: N passed, N failed"

Markers, an HTML comment on the line right before a ```sql fence:
  <!-- docs-test: skip: REASON -->       the block is not run; the reason is printed
  <!-- docs-test: error SQLSTATE -->     the block must raise that error (and no other)
  <!-- docs-test: expect F1 F2 ... -->   the figures must appear in the block's output, in
                                         this order; an output number matches a figure
                                         when rounded to the figure's decimal places
A ```text block right after a ```sql block (blank lines between at most) is the output
the block must print (psql's aligned format, compared line by line, trailing spaces
ignored, messages such as NOTICE and psql's "Asynchronous notification" lines left out).
"""
import re
import sys

MARKER = re.compile(r'^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$')
NUMBER = re.compile(r'-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')  # (psql prints no 1,000s commas)
SEP = '@@docs-block '


def blocks(path):
    """Each ```sql block: (line, sql, directive or None, expected text or None)."""
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == '```sql':
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != '```':
                j += 1
            directive = None
            if i > 0:
                m = MARKER.match(lines[i - 1])
                if m:
                    directive = m.group(1)
            k = j + 1
            while k < len(lines) and lines[k].strip() == '':
                k += 1
            expected = None
            if k < len(lines) and lines[k].strip() == '```text':
                e = k + 1
                while e < len(lines) and lines[e].strip() != '```':
                    e += 1
                expected = lines[k + 1:e]
                j = e
            out.append((start, '\n'.join(lines[start:_end(lines, start)]), directive, expected))
            i = j + 1
        else:
            i += 1
    return out


def _end(lines, start):
    j = start
    while lines[j].strip() != '```':
        j += 1
    return j


def kind(directive):
    if directive is None:
        return ('run', None)
    if directive.startswith('skip:'):
        return ('skip', directive[5:].strip())
    m = re.match(r'error\s+([0-9A-Z]{5})$', directive)
    if m:
        return ('error', m.group(1))
    if directive.startswith('expect '):
        return ('expect', directive[7:].split())
    raise SystemExit(f'unknown docs-test marker: {directive!r}')


def write_script(md, out):
    with open(out, 'w', encoding='utf-8') as f:
        f.write('\\set VERBOSITY verbose\n\\set SHOW_CONTEXT never\n')
        for n, (line, sql, directive, _) in enumerate(blocks(md)):
            f.write(f"\\echo '{SEP}{n}'\n")
            if kind(directive)[0] == 'skip':
                continue
            f.write(sql.rstrip() + '\n;\n')  # (a lone ';' is an empty statement)
        f.write(f"\\echo '{SEP}end'\n")


MESSAGE = re.compile(r'^psql:[^:]*:\d+: (ERROR|WARNING|NOTICE|INFO|FATAL|PANIC):\s+(\w{5}): ')
CONTINUATION = re.compile(r'^(DETAIL|HINT|LOCATION|CONTEXT|QUERY|LINE \d+):')


def figures_match(expected, output):
    tokens = NUMBER.findall(output)
    at = 0
    for fig in expected:
        plain = fig.replace(',', '')
        places = len(plain.split('.')[1]) if '.' in plain else 0
        want = float(plain)
        while at < len(tokens):
            try:
                got = float(tokens[at])
            except ValueError:
                at += 1
                continue
            at += 1
            if round(got, places) == round(want, places) or \
               f'{got:.{places}f}' == f'{want:.{places}f}':
                break
        else:
            return fig
    return None


def check(md, log):
    parts = {}
    current = None
    for raw in open(log, encoding='utf-8', errors='replace').read().split('\n'):
        if raw.startswith(SEP):
            current = raw[len(SEP):].strip()
            parts[current] = []
        elif current is not None:
            parts[current].append(raw)
    passed = failed = 0
    for n, (line, sql, directive, expected) in enumerate(blocks(md)):
        what, arg = kind(directive)
        name = f'{md}:{line}'
        if what == 'skip':
            print(f'SKIP {name}: {arg}')
            continue
        out = parts.get(str(n))
        problems = []
        if out is None:
            problems.append('the block did not run (the session ended before it)')
            out = []
        errors = [(m.group(2), l) for l in out for m in [MESSAGE.match(l)]
                  if m and m.group(1) in ('ERROR', 'FATAL', 'PANIC')]
        if what == 'error':
            if not any(code == arg for code, _ in errors):
                problems.append(f'expected ERROR {arg}, got none')
            errors = [e for e in errors if e[0] != arg]
        for _, l in errors:
            problems.append('unexpected ' + l)
        shown = []
        skip_cont = False
        for l in out:
            if l.startswith('Asynchronous notification '):  # (a LISTEN's; the pid varies)
                continue
            if MESSAGE.match(l) or l.startswith('psql:'):
                skip_cont = True
                continue
            if skip_cont and (CONTINUATION.match(l) or l.startswith('    ') or l.startswith('        ')):
                continue
            skip_cont = False
            shown.append(l.rstrip())
        while shown and shown[-1] == '':
            shown.pop()
        if what == 'expect':
            missing = figures_match(arg, '\n'.join(shown))
            if missing is not None:
                problems.append(f'figure {missing} not in the output (figures {" ".join(arg)})')
        if expected is not None:
            want = [l.rstrip() for l in expected]
            while want and want[-1] == '':
                want.pop()
            got = [l for l in shown if l != '']
            want_ne = [l for l in want if l != '']
            if got != want_ne:
                problems.append('output differs from the text block:\n  expected:\n    '
                                + '\n    '.join(want_ne) + '\n  got:\n    ' + '\n    '.join(got))
        if problems:
            failed += 1
            print(f'FAIL {name}')
            for p in problems:
                print('    ' + p)
            for l in sql.split('\n')[:3]:
                print('    | ' + l)
        else:
            passed += 1
            print(f'ok   {name}')
    print(f'docs_file: {passed} passed, {failed} failed')


if __name__ == '__main__':
    if sys.argv[1] == 'script':
        write_script(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'check':
        check(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
