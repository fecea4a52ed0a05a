#!/usr/bin/env python3
"""Save / load benchmark of akida model files (.fb and .fbz).

The model: InputData(100, 100, 10, input_bits=1) -> FullyConnected(100, weights_bits=1), i.e.
10,000,000 weights (random 0/1, fixed seed); in memory that is 10 MB of int8 weights.

For each of save .fb, save .fbz, load .fb and load .fbz the script reports:
- the time, best of ``--runs`` (default 3), measured in this process;
- the peak memory of the operation, measured in a fresh subprocess: ``ru_maxrss`` before and after
  the operation, reporting the increase. For a save the subprocess must first hold the model (it
  loads it from a .fb file); the high-water mark is reset after that set-up by writing "5" to
  ``/proc/self/clear_refs`` (Linux), so that the figure is the save's own peak. Where that is not
  possible the increase is a lower bound and is marked so.

Targets (printed next to the figures, never asserted): under 1 second per operation, and a peak
memory increase within 3x the model's in-memory size. The script exits 0.

Usage:
    python benches/bench_model_files.py [--runs 3] [--neurons 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

INPUT_SHAPE = (100, 100, 10)  # (height, width, channels)
TARGET_SECONDS = 1.0
TARGET_MEMORY_FACTOR = 3.0
MB = 1e6


def build_model(neurons: int, seed: int = 2024):
    import akida

    h, w, c = INPUT_SHAPE
    model = akida.Model()
    model.add(akida.InputData(w, h, c, input_bits=1, name="input"))
    model.add(akida.FullyConnected(neurons, weights_bits=1, name="dense"))
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 2, size=(h, w, c, neurons), dtype=np.int8)
    model.layers[1].set_variable("weights", weights)
    return model, weights


# --------------------------------------------------------------------------------------------------
# Memory measurement (child process)
# --------------------------------------------------------------------------------------------------


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(op: str, source: str, target: str) -> None:
    """Runs one operation and prints a JSON line with the ru_maxrss figures (KiB)."""
    import akida

    # the engine's worker threads and allocator warm up before the measurement
    warm = akida.Model()
    warm.add(akida.InputData(2, 2, 1))
    warm.add(akida.FullyConnected(2))
    warm.forward(np.zeros((2, 2, 2, 1), np.uint8))
    model = akida.Model(source) if op.startswith("save") else None
    reset = _reset_peak()
    before, hwm_before = _maxrss_kib(), _status_kib("VmHWM")
    if op.startswith("save"):
        model.save(target)
    else:
        loaded = akida.Model(source)
        assert loaded.get_layer_count() == 2
    after, hwm_after = _maxrss_kib(), _status_kib("VmHWM")
    print(json.dumps(dict(op=op, before_kib=before, after_kib=after, reset=reset, hwm_before_kib=hwm_before,
                          hwm_after_kib=hwm_after)))


def measure_memory(op: str, source: Path, target: Path) -> dict:
    # Through a shell that forks the child: a process exec'd straight from this one would inherit
    # this process's (larger) high-water mark in its ru_maxrss; a fork of the small shell does not.
    command = [sys.executable, __file__, "--child", op, str(source), str(target)]
    proc = subprocess.run(["/bin/sh", "-c", '"$@"; exit $?', "sh", *command],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"memory child for {op} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def best_time(fn, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
        del result
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--neurons", type=int, default=100, help="FullyConnected neurons (100: 10M weights)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", nargs=3, metavar=("OP", "SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    import akida

    model, weights = build_model(args.neurons)
    n_weights = weights.size
    model_bytes = weights.nbytes  # int8 weights dominate the model's in-memory size
    print(f"akida {akida.__version__}, {akida.engine_info()}")
    print(f"model: InputData{INPUT_SHAPE[::-1]} -> FullyConnected({args.neurons}): {n_weights:,} weights, "
          f"{model_bytes / MB:.1f} MB in memory")

    rows = []
    with tempfile.TemporaryDirectory(prefix="akida-bench-") as tmp:
        folder = Path(tmp)
        for ext in ("fb", "fbz"):
            path = folder / f"model.{ext}"
            save_s = best_time(lambda: model.save(path), args.runs)
            size = path.stat().st_size
            load_s = best_time(lambda: akida.Model(path), args.runs)
            loaded = akida.Model(path)
            if not np.array_equal(loaded.layers[1].get_variable("weights"), weights):
                raise SystemExit(f"the .{ext} file does not hold the model's weights")
            del loaded
            save_mem = measure_memory(f"save_{ext}", folder / "model.fb", folder / f"child.{ext}")
            load_mem = measure_memory(f"load_{ext}", path, path)
            rows.append((f"save .{ext}", save_s, save_mem, size))
            rows.append((f"load .{ext}", load_s, load_mem, size))

    mem_target = TARGET_MEMORY_FACTOR * model_bytes
    print()
    print(f"{'operation':<10} {'file size':>10} {'time':>9}  {'< 1 s':<6} {'peak mem +':>11}  "
          f"{f'<= {TARGET_MEMORY_FACTOR:g}x model ({mem_target / MB:.0f} MB)':<24}")
    results = []
    for name, seconds, mem, size in rows:
        increase = (mem["after_kib"] - mem["before_kib"]) * 1024
        time_ok = "ok" if seconds < TARGET_SECONDS else "MISSED"
        mem_ok = "ok" if increase <= mem_target else "MISSED"
        note = "" if mem["reset"] or name.startswith("load") else "  (lower bound: peak not reset)"
        print(f"{name:<10} {size / MB:>7.2f} MB {seconds:>7.3f} s  {time_ok:<6} {increase / MB:>8.1f} MB  "
              f"{mem_ok:<24}{note}")
        results.append(dict(operation=name, file_bytes=size, seconds=seconds, peak_increase_bytes=increase,
                            time_target_met=seconds < TARGET_SECONDS, memory_target_met=increase <= mem_target,
                            peak_reset=mem["reset"], child=mem))
    print()
    print(f"peak memory: ru_maxrss increase during the operation in a fresh process; a load's figure "
          f"includes the loaded model itself ({model_bytes / MB:.0f} MB of int8 weights)")
    if args.json:
        args.json.write_text(json.dumps(dict(weights=n_weights, model_bytes=model_bytes, runs=args.runs,
                                             results=results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
