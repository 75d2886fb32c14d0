"""Is the second core a whole core? The same CPU-bound work alone on core 0, then on cores 0 and 1 at once.

    uv run python benchmarks/cores.py --repeats 2

``benchmarks/pipeline.py`` compares 1 and 2 pinned CPUs; its ratio only means something if two busy cores
give about twice the throughput of one (not two hyperthreads of one core, not a host that throttles the
second). Each workload runs in fresh processes pinned with ``sched_setaffinity``: a pure-Python integer
loop (the interpreter, like ingest's per-row work) and numpy sorts of a 32 MB array (memory-bound, like
the Arrow kernels). Prints each one's 2-core throughput over 1 core's; near 2.0x means whole cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def python_loop() -> None:
    total = 0
    for i in range(25_000_000):
        total += i * i % 7


def numpy_sort() -> None:
    import numpy as np

    values = np.random.default_rng(0).random(4_000_000)
    for _ in range(40):
        np.sort(values)


WORKLOADS = {"python": python_loop, "numpy": numpy_sort}


def child(name: str, core: int) -> None:
    os.sched_setaffinity(0, {core})
    started = time.perf_counter()
    WORKLOADS[name]()
    print(time.perf_counter() - started)


def seconds(name: str, cores: list[int]) -> list[float]:
    """Run the workload once on each of ``cores`` at the same time; each process's seconds."""
    command = [sys.executable, __file__, "--child", name]
    procs = [subprocess.Popen([*command, str(c)], stdout=subprocess.PIPE, text=True) for c in cores]
    return [float(p.communicate()[0]) for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "CORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("benchmarks/cores.py needs two cores to compare")
    for name in WORKLOADS:
        for _ in range(args.repeats):
            (alone,) = seconds(name, [0])
            pair = seconds(name, [0, 1])
            print(
                f"{name}: alone {alone:.2f}s; on both cores at once {pair[0]:.2f}s / {pair[1]:.2f}s: "
                f"2-core throughput {2 * alone / max(pair):.2f}x one core's",
                flush=True,
            )


if __name__ == "__main__":
    main()
