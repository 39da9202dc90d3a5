#!/usr/bin/env python3
"""Prints the curl examples of proto-docs/http-api.md as JSON, for the end-to-end test.

Each example in the document is a ```sh fenced block holding one command line, followed (after
blank lines only) by a ```text fenced block holding the command's exact standard output. Output:

  [{"index": 1, "line": 57, "command": "curl ...", "expected": "2\n",
    "pattern": "^2$"}, ...]

`line` is the 1-based line of the ```sh fence. `expected` is the text block with a final newline.
`pattern` is a Python regular expression for the whole output with trailing newlines removed:
the text is matched literally except for the token <any>, which matches a non-empty run of
characters other than white space, '"', ',', '}' and ']'.

A runner runs the commands in order with `bash -c` against a fresh server, strips trailing newlines
from stdout and checks re.fullmatch(pattern, stdout). Exit status: 0, or 1 when the document
breaks the convention (a sh block with more than one line, or without a text block after it).

Usage: extract_examples.py [path/to/http-api.md]
"""
import json
import os
import re
import sys

ANY = "<any>"
ANY_RE = r'[^\s",}\]]+'
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")


def blocks(lines):
    """Yields (language, first line number, body lines) for each fenced block."""
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start, body = m.group(1), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"line {start}: unterminated fenced block")
        yield lang, start, body, i + 1  # i + 1: the line after the closing fence (0-based index)
        i += 1


def pattern(expected):
    text = expected.rstrip("\n")
    return "^" + ANY_RE.join(re.escape(part) for part in text.split(ANY)) + "$"


def extract(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    found = list(blocks(lines))
    examples, problems = [], []
    for n, (lang, start, body, after) in enumerate(found):
        if lang != "sh":
            continue
        commands = [l for l in body if l.strip()]
        if len(commands) != 1:
            problems.append(f"line {start}: a sh block must hold exactly one command line, found {len(commands)}")
            continue
        nxt = found[n + 1] if n + 1 < len(found) else None
        between = lines[after:nxt[1] - 1] if nxt else []
        if nxt is None or nxt[0] != "text" or any(l.strip() for l in between):
            problems.append(f"line {start}: a sh block must be followed by a text block")
            continue
        expected = "\n".join(nxt[2]) + "\n"
        examples.append({
            "index": len(examples) + 1,
            "line": start,
            "command": commands[0],
            "expected": expected,
            "pattern": pattern(expected),
        })
    return examples, problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "proto-docs", "http-api.md")
    examples, problems = extract(path)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    if not examples:
        print(f"{path}: no examples found", file=sys.stderr)
        problems.append("none")
    json.dump(examples, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
