#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Validate JSON documents against the schemas of docs/vmcctl-json.md.

    json_check.py DOC NAME... < lines

Each non-empty line of standard input must be one JSON document matching
one of the named schemas (the ```json block after "<!-- schema: NAME -->"
in DOC). Prints, per line, the name it matched; exits 1 with the reason at
the first line that matches none.
"""
import json
import re
import sys


def schemas(doc):
    """NAME -> schema, from the marked blocks of the document."""
    text = open(doc, encoding="utf-8").read()
    found = {}
    for m in re.finditer(r"<!-- schema: (\w+) -->\s*```json\n(.*?)```", text, re.S):
        found[m.group(1)] = json.loads(m.group(2))
    return found


def kinds_of(value):
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    if isinstance(value, str):
        return {"string"}
    return {type(value).__name__}


def check(schema, value, where):
    """None if value has the shape of schema, else why not."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where}: {json.dumps(value)[:60]} is not an object"
        names = {k.rstrip("?"): k.endswith("?") for k in schema}
        for name in value:
            if name not in names:
                return f"{where}: member {name!r} is not in the schema"
        for key, sub in schema.items():
            name = key.rstrip("?")
            if name not in value:
                if key.endswith("?"):
                    continue
                return f"{where}: member {name!r} is missing"
            why = check(sub, value[name], f"{where}.{name}")
            if why:
                return why
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where}: {json.dumps(value)[:60]} is not an array"
        for i, item in enumerate(value):
            why = check(schema[0], item, f"{where}[{i}]")
            if why:
                return why
        return None
    want = set(schema.split("|"))
    if want & kinds_of(value):
        return None
    return f"{where}: {json.dumps(value)[:60]} is not {schema}"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    known = schemas(sys.argv[1])
    names = sys.argv[2:]
    for n in names:
        if n not in known:
            sys.exit(f"no schema {n!r} in {sys.argv[1]} (has {sorted(known)})")
    count = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        count += 1
        try:
            value = json.loads(line)
        except ValueError as e:
            sys.exit(f"line {count}: not JSON ({e}): {line[:80]}")
        reasons = []
        for n in names:
            why = check(known[n], value, n)
            if not why:
                print(n)
                break
            reasons.append(why)
        else:
            sys.exit(f"line {count}: " + "; ".join(reasons))
    if count == 0:
        sys.exit("no document on standard input")


main()
