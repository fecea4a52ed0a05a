#!/usr/bin/env python3
"""A learning-parameter sweep on the MNIST subset, sequential vs a local two-process Dask cluster.

The set-up of benches/bench_learning.py (plain front end: pixels > 127 as 1-bit events into
InputData(28, 28, 1) -> FullyConnected, 10 classes, one pass over 4,000 training images, 1,000
test images) over a grid of (neurons per class, num_weights, plasticity_decay), run with
``akida.distributed.sweep``: first in this process, one point after the other, then on
``LocalCluster(n_workers=2, processes=True, threads_per_worker=1)`` with the training data sent
once per worker (``shared=``). Both runs must give the same accuracies; the script prints both
times and the speedup.

    python benches/bench_distributed.py [--workers N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_learning  # noqa: E402

import akida  # noqa: E402
from akida import distributed as ad  # noqa: E402


def build_and_fit(per_class, num_weights, plasticity_decay, seed, x_train, y_train, x_test, y_test):
    model = akida.Model()
    model.add(akida.InputData(input_width=28, input_height=28, input_channels=1, input_bits=1))
    model.add(akida.FullyConnected(num_neurons=10 * per_class, activations_enabled=False))
    model.compile(num_weights=num_weights, num_classes=10, plasticity_decay=plasticity_decay, seed=seed)
    model.fit(x_train, y_train)
    return float(np.mean(model.predict(x_test) == y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smaller grid (smoke test)")
    args = parser.parse_args()

    images, labels, train, test = bench_learning.mnist_split()
    spikes = (images > 127).astype(np.uint8)
    shared = dict(x_train=spikes[train], y_train=labels[train], x_test=spikes[test], y_test=labels[test])
    grid = {
        "per_class": [10, 50] if args.quick else [10, 50, 100],
        "num_weights": [150, 200] if args.quick else [100, 150, 200, 300],
        "plasticity_decay": [0.05, 0.25],
    }
    points = len(ad.grid_points(grid))

    start = time.perf_counter()
    sequential = ad.sweep(build_and_fit, grid, client=None, seed=0, shared=shared)
    t_sequential = time.perf_counter() - start

    import distributed

    cluster = distributed.LocalCluster(
        n_workers=args.workers, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=40,
        env={"RAYON_NUM_THREADS": "1"},  # one engine thread per worker process: the workers share the cores
    )
    client = distributed.Client(cluster)
    try:
        client.wait_for_workers(args.workers)
        start = time.perf_counter()
        parallel = ad.sweep(build_and_fit, grid, client=client, seed=0, shared=shared)
        t_parallel = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()

    assert parallel == sequential, "the cluster's results differ from the sequential run"
    info = akida.engine_info()
    print(f"akida {akida.__version__}, {os.cpu_count()} CPUs, {info['worker_threads']} engine threads in this process")
    print(f"grid: {points} points {grid}")
    best = max(sequential, key=lambda item: item[1])
    print(f"best: {best[0]} -> {best[1]:.1%}")
    print(f"sequential (this process): {t_sequential:.2f} s")
    print(f"local cluster, {args.workers} worker processes: {t_parallel:.2f} s (cluster start not counted)")
    print(f"speedup: {t_sequential / t_parallel:.2f}x, identical results: yes")


if __name__ == "__main__":
    main()
