#!/usr/bin/env python3
"""Throughput of ``akida.converters.events_to_packets`` (the engine's packetizer) in events/s.

Workload: random events on a 128x128 sensor (x, y uniform, polarity 0/1, timestamps increasing
by 0..2 µs, i.e. ~1 event per µs), 20 million by default. Variants:

- ``count``: packet_size=5000, polarities split, binary;
- ``count merge 4b``: packet_size=5000, polarities merged, input_bits=4;
- ``time``: time_window=5000 µs, split, binary;
- ``time ds2``: time_window=5000 µs, split, downsample=2;
- ``tonic struct``: the ``count`` variant from a tonic-style structured array with int64
  fields, which the engine reads in place (strided, no copy);
- ``engine only``: the ``count`` variant calling ``akida._akida.packetize`` directly with
  ready int64 arrays (no wrapper validation or conversion).

Each figure is the best of ``--runs`` runs (default 3, after a warm-up run), in millions of events per second,
printed next to the target of 50 M events/s. For comparison the script times two numpy
implementations of the same contract on fewer events: a vectorized one (``np.bincount``) and
the plain per-event Python loop that the tests use as reference. Before timing, the engine
output is compared with the vectorized numpy output on 1 million events (printed, not asserted).
Nothing is asserted.

    python benches/bench_packetizer.py [--events 20000000] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import akida
from akida import _akida, converters

TARGET_MEPS = 50.0
SENSOR = (128, 128)


def make_events(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, SENSOR[0], n, dtype=np.int64)
    y = rng.integers(0, SENSOR[1], n, dtype=np.int64)
    t = np.cumsum(rng.integers(0, 3, n, dtype=np.int64))
    p = rng.integers(0, 2, n, dtype=np.int64)
    return x, y, t, p


def numpy_packetize(x, y, t, p, width, height, channels, packet_size, time_window, downsample, input_bits):
    """Vectorized numpy implementation of the packetizer contract (sorted t assumed, no checks)."""
    out_h, out_w = -(-height // downsample), -(-width // downsample)
    n = len(x)
    if packet_size is not None:
        num_packets = -(-n // packet_size)
        packet = np.arange(n, dtype=np.int64) // packet_size
    else:
        packet = (t - t[0]) // time_window
        num_packets = int(packet[-1]) + 1
    channel = (p > 0).astype(np.int64) if channels == 2 else 0
    cell = ((packet * out_h + y // downsample) * out_w + x // downsample) * channels + channel
    counts = np.bincount(cell, minlength=num_packets * out_h * out_w * channels)
    np.minimum(counts, 2**input_bits - 1, out=counts)
    return counts.astype(np.uint8).reshape(num_packets, out_h, out_w, channels)


def loop_packetize(x, y, t, p, width, height, channels, packet_size, time_window, downsample, input_bits):
    """The plain per-event loop (the tests' reference)."""
    out_h, out_w = -(-height // downsample), -(-width // downsample)
    n = len(x)
    t0 = int(t[0])
    index = [i // packet_size for i in range(n)] if packet_size else [(int(v) - t0) // time_window for v in t]
    counts = np.zeros((index[-1] + 1, out_h, out_w, channels), dtype=np.int64)
    xs, ys, ps = x.tolist(), y.tolist(), p.tolist()
    for i in range(n):
        channel = (1 if ps[i] > 0 else 0) if channels == 2 else 0
        counts[index[i], ys[i] // downsample, xs[i] // downsample, channel] += 1
    return np.minimum(counts, 2**input_bits - 1).astype(np.uint8)


def best_of(runs: int, fn) -> tuple[float, object]:
    """Best wall time of ``runs`` calls, after one untimed warm-up call."""
    result = fn()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    print(f"akida {akida.__version__}, engine {akida.engine_info()}")
    n = args.events
    x, y, t, p = make_events(n)
    sensor = SENSOR + (2,)

    # Correctness on a prefix, against the vectorized numpy implementation.
    m = min(n, 1_000_000)
    checks = {
        "count": dict(packet_size=5000, time_window=None, channels=2, downsample=1, input_bits=1),
        "time ds3 4b": dict(packet_size=None, time_window=777, channels=1, downsample=3, input_bits=4),
    }
    for name, c in checks.items():
        engine = converters.events_to_packets(
            x=x[:m], y=y[:m], t=t[:m], p=p[:m], sensor_size=sensor, packet_size=c["packet_size"],
            time_window=c["time_window"], polarity="split" if c["channels"] == 2 else "merge",
            downsample=c["downsample"], input_bits=c["input_bits"],
        )
        ref = numpy_packetize(x[:m], y[:m], t[:m], p[:m], *SENSOR, c["channels"], c["packet_size"],
                              c["time_window"], c["downsample"], c["input_bits"])
        same = engine.shape == ref.shape and np.array_equal(engine, ref)
        print(f"check {name:<12} on {m:,} events: engine {'==' if same else '!='} numpy")

    tonic = np.empty(n, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    tonic["x"], tonic["y"], tonic["t"], tonic["p"] = x, y, t, p

    variants = {
        "count": lambda: converters.events_to_packets(x=x, y=y, t=t, p=p, sensor_size=sensor, packet_size=5000),
        "count merge 4b": lambda: converters.events_to_packets(
            x=x, y=y, t=t, p=p, sensor_size=sensor, packet_size=5000, polarity="merge", input_bits=4
        ),
        "time": lambda: converters.events_to_packets(x=x, y=y, t=t, p=p, sensor_size=sensor, time_window=5000),
        "time ds2": lambda: converters.events_to_packets(
            x=x, y=y, t=t, p=p, sensor_size=sensor, time_window=5000, downsample=2
        ),
        "tonic struct": lambda: converters.events_to_packets(tonic, sensor_size=sensor, packet_size=5000),
        "engine only": lambda: _akida.packetize(x, y, t, p, 128, 128, 2, 5000, None, 1, 1),
    }
    results = {"events": n, "target_meps": TARGET_MEPS, "engine": {}, "numpy": {}}
    print(f"\n{n:,} events, 128x128 sensor, best of {args.runs} (target >= {TARGET_MEPS:.0f} M events/s)")
    for name, fn in variants.items():
        seconds, out = best_of(args.runs, fn)
        meps = n / seconds / 1e6
        results["engine"][name] = {"seconds": seconds, "meps": meps, "packets": int(out.shape[0])}
        flag = "meets" if meps >= TARGET_MEPS else "below"
        print(f"  {name:<15} {seconds * 1000:8.1f} ms  {meps:7.1f} M events/s  {out.shape[0]:5d} packets  ({flag} target)")
    del tonic

    nv = min(n, 2_000_000)
    nl = min(n, 200_000)
    print("\nnumpy implementations of the same contract (packet_size=5000, split, binary):")
    seconds, _ = best_of(args.runs, lambda: numpy_packetize(x[:nv], y[:nv], t[:nv], p[:nv], *SENSOR, 2, 5000, None, 1, 1))
    results["numpy"]["vectorized"] = {"events": nv, "seconds": seconds, "meps": nv / seconds / 1e6}
    print(f"  vectorized (bincount)  {nv:>10,} events {seconds * 1000:8.1f} ms  {nv / seconds / 1e6:7.2f} M events/s")
    seconds, _ = best_of(1, lambda: loop_packetize(x[:nl], y[:nl], t[:nl], p[:nl], *SENSOR, 2, 5000, None, 1, 1))
    results["numpy"]["loop"] = {"events": nl, "seconds": seconds, "meps": nl / seconds / 1e6}
    print(f"  per-event Python loop  {nl:>10,} events {seconds * 1000:8.1f} ms  {nl / seconds / 1e6:7.2f} M events/s")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
