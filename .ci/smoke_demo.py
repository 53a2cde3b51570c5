"""Smoke test of the README's run command: start, /ready, one API call, Ctrl-C, no orphan."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BASE = "http://127.0.0.1:8000"


def get(path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(BASE + path, timeout=2) as r:  # noqa: S310
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True)
    children: dict[int, list[int]] = {}
    for line in out.stdout.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found: set[int] = set()
    stack = [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            found.add(c)
            stack.append(c)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    command = shlex.split(sys.argv[1])
    var_dir = tempfile.mkdtemp(prefix="mp-smoke-")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["MARKETPLACE_VAR_DIR"] = var_dir
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        ready = False
        while time.monotonic() - started < 120:
            if proc.poll() is not None:
                print(f"demo exited early with {proc.returncode}")
                return 1
            try:
                status, _ = get("/ready")
                if status == 200:
                    ready = True
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if not ready:
            print("demo never became ready")
            return 1
        print(f"ready after {time.monotonic() - started:.1f}s")
        status, body = get("/api/geo/provinces/92/communes")
        communes = json.loads(body)
        count = len(communes["items"] if isinstance(communes, dict) else communes)
        print(f"GET /api/geo/provinces/92/communes -> {status}, {count} communes")
        if status != 200 or count != 103:
            return 1
        tree = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        proc.wait(timeout=30)
        print(f"stopped {time.monotonic() - t0:.1f}s after Ctrl-C (exit {proc.returncode})")
        time.sleep(0.5)
        leftovers = [p for p in tree if alive(p)]
        pid_file = os.path.join(var_dir, "pg", "postmaster.pid")
        if os.path.exists(pid_file):
            with open(pid_file) as f:
                postmaster = int(f.readline())
            if alive(postmaster):
                leftovers.append(postmaster)
        if leftovers:
            print(f"orphans left behind: {leftovers}")
            subprocess.run(
                ["ps", "-o", "pid,args", "-p", ",".join(map(str, leftovers))], check=False
            )
            return 1
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
