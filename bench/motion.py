"""The demo's central claim, repeated: one frame cannot tell the synthetic classes apart, motion can.

    python bench/motion.py [--seeds 3] [--first-seed 0] [--kernels default avx2 avx512] [--threads 2]

For each CPU kernel (ATEN_CPU_CAPABILITY, each in a process of its own) and seed (the data set's and the
model's), trains the tiny VideoMAE of tests/test_motion_property.py twice, on real clips and on clips
whose frames are all the first, and prints the test videos right of 376 with the binomial bounds the test
uses. A kernel this CPU lacks runs as the best it has (said in the table). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def one_run(seed: int) -> dict:
    import torch
    from significance import fewest_above_chance
    from test_motion_property import motion_clips, train_and_score

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        train, test, num_labels = motion_clips(Path(folder) / "data", seed=seed + 1)
    n = len(test[1])
    return {"kernel": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(), "seed": seed,
            "n": n, "bound": fewest_above_chance(n, 1 / num_labels),
            "static": train_and_score(train, test, num_labels, static=True, seed=seed),
            "motion": train_and_score(train, test, num_labels, static=False, seed=seed),
            "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--kernels", nargs="+", default=["default", "avx2", "avx512"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a worker: this seed, JSON on stdout
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one_run(args.one)))
        return
    print("| kernel asked | kernel run | threads | seed | motion right | one frame right | test videos | "
          "above chance from | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kernel in args.kernels:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            env = {**os.environ, "ATEN_CPU_CAPABILITY": kernel, "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run([sys.executable, __file__, "--one", str(seed)], env=env, capture_output=True,
                                  text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {kernel} | {r['kernel']} | {r['threads']} | {seed} | {r['motion']} | {r['static']} | {r['n']} | "
                  f"{r['bound']} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
