#!/usr/bin/env python3
"""Runs the curl examples of proto-docs/http-api.md (or of another document, such as sql.md), in
order, against a fresh server.

Usage: run_examples.py PATH_TO_LAMINAR_BINARY [http-api.md]
Starts `laminar serve --memory --port 0` in a temporary directory, rewrites the documented
address 127.0.0.1:7070 to the real port, runs each example with bash, and compares stdout (trailing
newlines removed) with the documented output. Prints every mismatch; exits 1 if there is any.
The binary's directory leads PATH, so examples may run `laminar …` itself.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
binary = sys.argv[1]
doc = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "proto-docs", "http-api.md")
examples = json.loads(subprocess.run([sys.executable, os.path.join(here, "extract_examples.py"), doc],
                                     check=True, capture_output=True, text=True).stdout)
name = os.path.basename(doc)
env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(binary)) + os.pathsep + os.environ.get("PATH", ""))
work = tempfile.mkdtemp(prefix="laminar-examples-")
server = subprocess.Popen([binary, "serve", "--memory", "--port", "0"], cwd=work,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
ready = server.stdout.readline()
m = re.search(r"http://127\.0\.0\.1:(\d+)", ready)
if not m:
    print(f"server did not start: {ready!r}")
    sys.exit(1)
port = m.group(1)
failures = 0
try:
    for ex in examples:
        command = ex["command"].replace("127.0.0.1:7070", f"127.0.0.1:{port}")
        r = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=30)
        out = r.stdout.rstrip("\n").replace(f"127.0.0.1:{port}", "127.0.0.1:7070")
        if not re.fullmatch(ex["pattern"], out, re.S):
            failures += 1
            print(f"--- example {ex['index']} ({name} line {ex['line']}): {ex['command']}")
            print("expected:\n" + ex["expected"].rstrip("\n"))
            print("actual:\n" + out)
finally:
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=15)
print(f"{len(examples) - failures} passed, {failures} failed")
sys.exit(1 if failures or code != 0 else 0)
