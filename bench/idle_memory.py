"""Idle memory of the `make run` stack, per process (issue 19, item 7).

Usage: .venv/bin/python bench/idle_memory.py [--settle SECONDS] [--env NAME=VALUE ...]

Starts scripts/run_stack.py (what `make run` runs) on free ports with a fresh
var dir, in its default configuration plus any --env (e.g. SUMMARIZER=gemini
GEMINI_API_KEY=x, which imports the SDK where it is used; nothing calls it
while idle), as bench/stack.py does for the other benchmarks. Once
/api/health answers it waits --settle seconds (10) for the stack to go idle,
then reads PSS and RSS (/proc/<pid>/smaps_rollup) of every process in the
launcher's tree, prints them per component and in total, and stops the stack.
PSS splits shared pages among their sharers, so its total counts gunicorn's
forked workers' shared pages once; RSS counts them in every process.

Exits 0 if the total PSS is within GOAL_MIB, 1 if not, 2 if it could not measure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack as st

GOAL_MIB = 400
MIB = 1024 * 1024


def smaps_rollup(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in bytes, both from one read of smaps_rollup (0, 0 if gone)."""
    sizes = {"Pss:": 0, "Rss:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(" ")
            if name in sizes:
                sizes[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return sizes["Pss:"], sizes["Rss:"]


def component_of(pid: int, launcher: int) -> str:
    """'launcher', 'valkey', 'gunicorn master', 'gunicorn worker', 'worker1',
    'beat', 'flower', ... for a process of the stack."""
    if pid == launcher:
        return "launcher (run_stack.py)"
    argv = st.cmdline(pid)
    name: str = st.program_name(argv)
    if name.startswith("valkey"):
        return "valkey"
    if name == "gunicorn":
        return "gunicorn master" if st._ppid(pid) == launcher else "gunicorn worker"
    if name == "celery worker":
        hostname = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--hostname"),
                        "worker")
        return hostname.split("@")[0]
    return name.removeprefix("celery ")


def measure(launcher: int) -> dict[str, tuple[int, int, int]]:
    """Per component: (processes, PSS bytes, RSS bytes)."""
    table: dict[str, tuple[int, int, int]] = {}
    for pid in st.process_tree(launcher):
        name = component_of(pid, launcher)
        count, pss, rss = table.get(name, (0, 0, 0))
        more_pss, more_rss = smaps_rollup(pid)
        table[name] = (count + 1, pss + more_pss, rss + more_rss)
    return table


def report(table: dict[str, tuple[int, int, int]]) -> int:
    print(f"{'component':<26}{'procs':>6}{'PSS MiB':>10}{'RSS MiB':>10}")
    for name, (count, pss, rss) in sorted(table.items(), key=lambda item: -item[1][1]):
        print(f"{name:<26}{count:>6}{pss / MIB:>10.1f}{rss / MIB:>10.1f}")
    processes = sum(row[0] for row in table.values())
    total_pss = sum(row[1] for row in table.values()) / MIB
    total_rss = sum(row[2] for row in table.values()) / MIB
    print(f"{'total':<26}{processes:>6}{total_pss:>10.1f}{total_rss:>10.1f}")
    verdict = "PASS" if total_pss <= GOAL_MIB else "FAIL"
    print(f"idle memory: {total_pss:.0f} MiB PSS ({total_rss:.0f} MiB RSS) in {processes} "
          f"processes; goal <= {GOAL_MIB} MiB PSS: {verdict} "
          f"(load average {st.load_average()})")
    return 0 if total_pss <= GOAL_MIB else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds to wait once healthy before measuring (10)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the stack (repeatable)")
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.env)
    workdir = Path(tempfile.mkdtemp(prefix="smartcache-idle-memory-"))
    stack = st.Stack(workdir, settings, name="stack-idle")
    try:
        stack.start()
        time.sleep(args.settle)
        table = measure(stack.pid)
    except RuntimeError as error:
        print(f"idle memory: could not measure: {error}", file=sys.stderr)
        return 2
    finally:
        stack.stop()
        st.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return report(table)


if __name__ == "__main__":
    sys.exit(main())
