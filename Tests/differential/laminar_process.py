"""Starting `laminar serve` for the differential tests: the process and the port it chose."""

import re
import subprocess


def start(binary, args, cwd=None):
    """Starts `binary serve --port 0 ARGS` and returns (process, port) once its first output line
    names the address it listens on (the server opens its port only when ready)."""
    proc = subprocess.Popen([binary, "serve", "--port", "0", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)", ready)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {ready!r}")
    return proc, int(m.group(1))
