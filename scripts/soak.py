#!/usr/bin/env python3
"""Soak test of the engine's robustness (issue 12): random API calls (hypothesis), damaged model
files, threads, fork and SIGINT, each kind in worker subprocesses so that a crash or a hang is
counted, not fatal.

    .venv/bin/python scripts/soak.py                     # 100,000 cases
    .venv/bin/python scripts/soak.py --cases 5000 --workers 2
    .venv/bin/python scripts/soak.py --minutes 30        # stop after 30 minutes (or at --cases)

The summary gives, per kind and in total: cases run, crashes (a worker killed by a signal or
exiting without a report), hangs (no progress for --hang-seconds), unexpected outcomes (an
exception of a class the API does not promise, a wrong result, a late KeyboardInterrupt) with the
first few messages, and the peak RSS growth of the damaged-file workers over their baseline (the
largest growth seen while loading one file; every damaged file here is well under 10 MB, so the
bound of issue 12 is 256 MB). Exit status 1 when there was any crash, hang or unexpected outcome.

Kinds (weights in --mix): ``api`` random layer and model calls with hostile arguments drawn by
hypothesis; ``file`` damaged .fb / .fbz buffers (bit flips, truncation, random spans, splices,
random bytes; see ``damaged``) loaded from bytes and from files; ``thread`` forward with a small
batch_size while another thread flips weights (every output must be one version's); ``fork``
fork while threads compute (the child must finish in time with the right output); ``sigint``
SIGINT during forward / fit (late or inconsistent is unexpected). To add damaged-file
generators, extend ``MUTATIONS``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from typing import Callable, Dict, List

DEFAULT_MIX = "api=62,file=36,thread=1,fork=0.5,sigint=0.5"
ADDRESS_SPACE_LIMIT = 4 << 30  # workers: allocations beyond this must fail cleanly, not swap

# ----------------------------------------------------------------------------------------------
# Worker side
# ----------------------------------------------------------------------------------------------


def report(kind: str, **fields) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **fields}) + "\n")
    sys.stdout.flush()


def expected_errors():
    import akida

    # What the API promises for bad input (docs/api.md, Errors). An internal AkidaError (a caught
    # engine panic) is not among them: see ``internal``.
    return (akida.AkidaError, TypeError, ValueError, OverflowError, KeyError, IndexError, MemoryError)


def internal(error: BaseException) -> bool:
    """Whether ``error`` is the AkidaError of a caught engine panic (a bug, not bad input)."""
    return str(error).startswith("internal error in the akida engine")


def random_model(rng: random.Random):
    """A small valid model with random weights (the seed of damaged files and of thread cases)."""
    import numpy as np
    import akida

    h, w, c = rng.randint(3, 12), rng.randint(3, 12), rng.randint(1, 4)
    layers = [akida.InputData(w, h, c, input_bits=rng.choice([1, 2, 4]))]
    if rng.random() < 0.6:
        layers.append(akida.Convolutional(3, 3, rng.randint(1, 8), weights_bits=rng.choice([1, 2, 4])))
    layers.append(akida.FullyConnected(rng.randint(1, 8), weights_bits=rng.choice([1, 2]), activations_enabled=False))
    model = akida.Model(layers)
    np_rng = np.random.default_rng(rng.getrandbits(32))
    for layer in model.layers[1:]:
        bits = layer.parameters.to_dict()["weights_bits"]
        shape = layer.get_variable("weights").shape
        lo, hi = (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1)) if bits > 1 else (0, 2)
        layer.set_variable("weights", np_rng.integers(lo, hi, shape).astype(np.int8))
    return model


def random_input(model, n, seed):
    import numpy as np

    bits = model.layers[0].parameters.to_dict().get("input_bits", 8)
    return np.random.default_rng(seed).integers(0, 2**bits, (n,) + model.input_shape, dtype=np.uint8)


# Damaged-file generators: each takes (random, data, other valid buffers) and returns new bytes.
def _flip_bits(r: random.Random, data: bytes, others) -> bytes:
    b = bytearray(data)
    for _ in range(r.randint(1, 16)):
        i = r.randrange(len(b))
        b[i] ^= 1 << r.randrange(8)
    return bytes(b)


def _truncate(r, data, others):
    return data[: r.randrange(len(data))]


def _random_span(r, data, others):
    b = bytearray(data)
    i = r.randrange(len(b))
    n = r.randint(1, 64)
    b[i : i + n] = bytes(r.getrandbits(8) for _ in range(n))
    return bytes(b)


def _big_values(r, data, others):
    # Words of 0xff / 0x7f: sizes, counts and offsets near their limits.
    b = bytearray(data)
    for _ in range(r.randint(1, 4)):
        i = r.randrange(max(1, len(b) - 4)) & ~3
        b[i : i + 4] = r.choice([b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80"])
    return bytes(b)


def _splice(r, data, others):
    other = r.choice(others)
    i, j = r.randrange(len(data)), r.randrange(len(other))
    return data[:i] + other[j:]


def _insert(r, data, others):
    i = r.randrange(len(data))
    return data[:i] + bytes(r.getrandbits(8) for _ in range(r.randint(1, 32))) + data[i:]


def _random_bytes(r, data, others):
    return bytes(r.getrandbits(8) for _ in range(r.randint(0, 2048)))


MUTATIONS: Dict[str, Callable[[random.Random, bytes, List[bytes]], bytes]] = {
    "flip_bits": _flip_bits,
    "truncate": _truncate,
    "random_span": _random_span,
    "big_values": _big_values,
    "splice": _splice,
    "insert": _insert,
    "random_bytes": _random_bytes,
}


#: The share of file cases that are decompression bombs rather than damaged small models.
BOMB_SHARE = 0.005


def hostile_files():
    """``tests/hostile_files.py``: the bomb generators and the acceptance bound on peak RSS
    (twice the declared model size; 256 MB for an invalid file under 10 MB)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import hostile_files as hostile

    return hostile


def bomb(r: random.Random, hostile) -> bytes:
    """A ``.fbz`` declaring 1 MiB to 1 GiB (log-uniform) of zeros, or of filler after a valid
    FlatBuffers head (refused only by structure checks, or over the loading cap)."""
    declared = int(2 ** r.uniform(20, 30))
    if r.random() < 0.5:
        return hostile.zero_bomb(declared)
    return hostile.filler_bomb(declared, r.randrange(1, 256))


def damaged(r: random.Random, valid: List[bytes]) -> bytes:
    """One damaged buffer: one to three mutations of a valid .fb or .fbz buffer."""
    data = r.choice(valid)
    for _ in range(r.randint(1, 3)):
        if data:
            data = MUTATIONS[r.choice(sorted(MUTATIONS))](r, data, valid)
    return data


def valid_buffers(seed: int) -> List[bytes]:
    import akida

    r = random.Random(seed)
    buffers = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(6):
            model = random_model(r)
            if i % 2:
                try:
                    model.compile(num_weights=2, seed=i)  # learning state in the file too
                except akida.ArchitectureError:
                    pass  # a layer this rule cannot learn (docs/learning.md)
            buffers.append(model.to_buffer())
            path = os.path.join(d, f"m{i}.fbz")
            model.save(path)
            with open(path, "rb") as f:
                buffers.append(f.read())
    del akida
    return buffers


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker_file(start: int, count: int, seed: int) -> None:
    import akida

    hostile = hostile_files()
    valid = valid_buffers(seed)
    errors = expected_errors()
    baseline = maxrss_bytes()
    tmp = tempfile.mkdtemp(prefix="akida-soak-")
    for i in range(start, start + count):
        r = random.Random(seed * 1_000_003 + i)
        data = bomb(r, hostile) if r.random() < BOMB_SHARE else damaged(r, valid)
        before = maxrss_bytes()
        outcome = "ok"
        loaded = False
        try:
            if r.random() < 0.2:
                path = os.path.join(tmp, "damaged.fbz")
                with open(path, "wb") as f:
                    f.write(data)
                model = akida.Model(path)
            else:
                model = akida.Model(serialized_buffer=data)
            loaded = True
            if model.get_layer_count():
                # A file that loads is a model that works.
                x = random_input(model, 2, i)
                model.forward(x)
                akida.Model(serialized_buffer=model.to_buffer()).forward(x)
        except errors as e:
            if internal(e):
                outcome = str(e)[:300]
        except Exception as e:  # noqa: BLE001 - the point is to report it
            outcome = f"{type(e).__name__}: {e}"[:300]
        after = maxrss_bytes()
        growth = max(0, after - max(before, baseline))
        bound = hostile.allowed_peak(data, invalid=not loaded)
        report("case", i=i, outcome=outcome, rss_growth=growth, over_bound=growth > bound, size=len(data))


def worker_api(start: int, count: int, seed: int) -> None:
    """Random layer/model calls with hostile arguments, drawn by hypothesis (no shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    import numpy as np
    import akida

    errors = expected_errors()
    small = st.integers(1, 12)
    hostile_int = st.one_of(
        small, st.integers(-5, 0), st.integers(2**20, 2**70), st.floats(allow_nan=True), st.none(), st.text(max_size=3)
    )
    value = st.one_of(small, hostile_int)
    counter = iter(range(start, start + count))

    def layer_from(data):
        kind = data.draw(st.sampled_from(["fc", "conv", "sep", "concat", "input"]))
        pick = lambda: data.draw(value if data.draw(st.booleans()) else small)  # noqa: E731
        if kind == "fc":
            return akida.FullyConnected(pick(), weights_bits=data.draw(st.sampled_from([1, 2, 4, 9, -1])))
        if kind == "conv":
            return akida.Convolutional(pick(), pick(), pick(), stride_x=data.draw(st.sampled_from([1, 2, 0])))
        if kind == "sep":
            return akida.SeparableConvolutional(pick(), pick(), pick())
        if kind == "concat":
            return akida.Concat()
        return akida.InputData(pick(), pick(), pick(), input_bits=data.draw(st.sampled_from([1, 4, 8, 0, 9])))

    @hseed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def case(data):
        # Hypothesis may try an example more than asked: it runs, but is not reported.
        i = next(counter, None)
        outcome = "ok"
        try:
            model = akida.Model()
            model.add(akida.InputData(data.draw(small), data.draw(small), data.draw(st.integers(1, 3))))
            for _ in range(data.draw(st.integers(0, 4))):
                try:
                    model.add(layer_from(data))
                except errors as e:
                    if internal(e):
                        raise RuntimeError(str(e)) from e
            for _ in range(data.draw(st.integers(0, 6))):
                action = data.draw(st.sampled_from(["forward", "set", "pop", "repr", "buffer", "fit", "predict"]))
                try:
                    if action == "forward":
                        n = data.draw(st.integers(0, 3))
                        x = np.random.default_rng(i or 0).integers(0, 16, (n,) + model.input_shape, dtype=np.uint8)
                        model.forward(x, batch_size=data.draw(st.one_of(st.none(), st.integers(-1, 3))))
                    elif action == "set":
                        layer = model.layers[data.draw(st.integers(0, max(0, model.get_layer_count() - 1)))]
                        name = data.draw(st.sampled_from(["weights", "threshold_fire", "nope"]))
                        current = layer.get_variable(name)
                        layer.set_variable(name, np.full(current.shape, data.draw(st.integers(-9, 9)), current.dtype))
                    elif action == "pop":
                        handle = model.layers[-1]
                        model.pop_layer()
                        repr(handle), str(handle)
                    elif action == "repr":
                        repr(model), [repr(layer) for layer in model.layers]
                    elif action == "buffer":
                        akida.Model(serialized_buffer=model.to_buffer())
                    elif action == "fit":
                        model.compile(num_weights=data.draw(st.integers(-1, 5)))
                        x = np.zeros((2,) + model.input_shape, np.uint8)
                        model.fit(x, data.draw(st.one_of(st.none(), st.integers(-1, 3))))
                    else:
                        model.predict(np.zeros((1,) + model.input_shape, np.uint8))
                except errors as e:
                    if internal(e):
                        raise RuntimeError(str(e)) from e
        except errors as e:
            if internal(e):
                outcome = str(e)[:300]
        except Exception as e:  # noqa: BLE001
            outcome = f"{type(e).__name__}: {e}"[:300]
        if i is not None:
            report("case", i=i, outcome=outcome)

    case()


def worker_thread(start: int, count: int, seed: int) -> None:
    import numpy as np

    for i in range(start, start + count):
        r = random.Random(seed * 7919 + i)
        model = random_model(r)
        fc = model.layers[-1]
        w = fc.get_variable("weights")
        a, b = w.copy(), (1 - w if w.min() >= 0 else -w).astype(w.dtype)
        x = random_input(model, r.randint(4, 40), i)
        fc.set_variable("weights", a)
        out_a = model.forward(x)
        fc.set_variable("weights", b)
        out_b = model.forward(x)
        stop = threading.Event()

        def flip():
            while not stop.is_set():
                fc.set_variable("weights", a)
                fc.set_variable("weights", b)

        t = threading.Thread(target=flip)
        t.start()
        try:
            outs = [model.forward(x, batch_size=r.randint(1, 3)) for _ in range(3)]
        finally:
            stop.set()
            t.join()
        bad = sum(not (np.array_equal(o, out_a) or np.array_equal(o, out_b)) for o in outs)
        report("case", i=i, outcome="ok" if not bad else f"{bad} outputs mixed two versions")


def worker_fork(start: int, count: int, seed: int) -> None:
    import warnings

    import numpy as np

    warnings.simplefilter("ignore", DeprecationWarning)
    for i in range(start, start + count):
        r = random.Random(seed * 104729 + i)
        model = random_model(r)
        x = random_input(model, 300, i)
        expected = model.forward(x[:4])
        stop = threading.Event()

        def busy():
            while not stop.is_set():
                model.forward(x, batch_size=r.choice([None, 2]))

        t = threading.Thread(target=busy)
        t.start()
        time.sleep(r.random() * 0.02)
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(model.forward(x[:4]), expected)
            os._exit(0 if ok else 3)
        deadline = time.monotonic() + 15
        outcome = "ok"
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if status:
                    outcome = f"child exited with status {status}"
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                outcome = "child hung"
                break
            time.sleep(0.005)
        stop.set()
        t.join()
        report("case", i=i, outcome=outcome)


def worker_sigint(start: int, count: int, seed: int) -> None:
    import re

    import numpy as np
    import akida

    for i in range(start, start + count):
        r = random.Random(seed * 15485863 + i)
        model = akida.Model(
            [akida.InputData(24, 24, 4, input_bits=1), akida.Convolutional(3, 3, 32, weights_bits=1),
             akida.FullyConnected(6, weights_bits=1, activations_enabled=False)]
        )
        conv = model.layers[1]
        conv.set_variable("weights", np.random.default_rng(i).integers(0, 2, conv.get_variable("weights").shape).astype(np.int8))
        conv.set_variable("threshold_fire", np.full(32, 3, np.int32))
        model.compile(num_weights=20, num_classes=2, seed=i)
        start_bytes = model.to_buffer()
        x = (np.random.default_rng(i).random((1500, 24, 24, 4), dtype=np.float32) < 0.15).astype(np.uint8)
        learn = r.random() < 0.5
        sent = []
        timer = threading.Timer(0.02 + r.random() * 0.2, lambda: (sent.append(time.perf_counter()), os.kill(os.getpid(), signal.SIGINT)))
        timer.start()
        outcome = "ok"
        try:
            if learn:
                model.fit(x, 1, batch_size=r.choice([None, 5]))
            else:
                model.forward(x, batch_size=r.choice([None, 7]))
            outcome = "finished before the interrupt"  # not an error, but not a test either
        except KeyboardInterrupt as e:
            late = time.perf_counter() - sent[0]
            if late > 1.0:
                outcome = f"KeyboardInterrupt {late:.2f} s late"
            elif learn:
                notes = [re.search(r"first (\d+) of", n) for n in getattr(e, "__notes__", [])]
                found = [int(m.group(1)) for m in notes if m]
                cut = akida.Model(serialized_buffer=start_bytes)
                if found:
                    cut.fit(x[: found[0]], 1)
                if not found or cut.to_buffer() != model.to_buffer():
                    outcome = "interrupted fit is not the fit of the batch cut at that sample"
        finally:
            timer.cancel()
        if outcome == "finished before the interrupt":
            try:  # the timer may still fire: let it land here
                time.sleep(0.3)
            except KeyboardInterrupt:
                pass
            outcome = "ok"
        report("case", i=i, outcome=outcome)


WORKERS = {"api": worker_api, "file": worker_file, "thread": worker_thread, "fork": worker_fork, "sigint": worker_sigint}


def run_worker(kind: str, start: int, count: int, seed: int) -> None:
    import faulthandler

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent's "where are you?" on a hang
    WORKERS[kind](start, count, seed)
    report("end")


# ----------------------------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.cases: Counter = Counter()
        self.crashes: Counter = Counter()
        self.hangs: Counter = Counter()
        self.unexpected: Counter = Counter()
        self.messages: Dict[str, List[str]] = defaultdict(list)
        self.rss_growth = 0
        self.over_bound = 0
        self.largest_file = 0

    def note(self, kind: str, message: str) -> None:
        if len(self.messages[kind]) < 5:
            self.messages[kind].append(message)


def run_batch(kind: str, start: int, count: int, seed: int, tally: Tally, hang_seconds: float, deadline: float) -> int:
    """Runs cases [start, start + count) of ``kind`` in worker processes; returns cases run."""
    done = 0
    while done < count and time.monotonic() < deadline:
        first = start + done
        # stderr goes to a file, not a pipe: a worker that writes much there must not block.
        err_file = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", kind, "--start", str(first),
             "--count", str(count - done), "--seed", str(seed + first)],
            stdout=subprocess.PIPE, stderr=err_file, text=True,
        )

        def worker_stderr() -> str:
            err_file.flush()
            err_file.seek(0)
            return err_file.read()[-3000:]

        last_progress, ended, hung = time.monotonic(), False, False
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    break
                last_progress = time.monotonic()
                msg = json.loads(line)
                if msg["kind"] == "end":
                    ended = True
                    continue
                done += 1
                tally.cases[kind] += 1
                if msg["outcome"] != "ok":
                    tally.unexpected[kind] += 1
                    tally.note(kind, f"case {msg['i']}: {msg['outcome']}")
                if kind == "file":
                    tally.rss_growth = max(tally.rss_growth, msg["rss_growth"])
                    if msg["over_bound"]:
                        tally.over_bound += 1
                        tally.note("file", f"case {msg['i']}: {msg['rss_growth'] / 2**20:.0f} MiB over its bound")
                    tally.largest_file = max(tally.largest_file, msg["size"])
            elif time.monotonic() - last_progress > hang_seconds:
                proc.send_signal(signal.SIGUSR1)  # the worker's stacks, to its stderr
                time.sleep(1.0)
                proc.kill()
                hung = True
                tally.hangs[kind] += 1
                proc.wait()
                stacks = worker_stderr()
                tally.note(
                    kind,
                    f"case {start + done} (worker seed {seed + first}, {time.strftime('%H:%M:%S')}): "
                    f"no progress for {hang_seconds:.0f} s (hang); worker stacks:\n{stacks[-3000:]}",
                )
                done += 1  # skip the hanging case
                tally.cases[kind] += 1
                break
        proc.wait()
        errors = worker_stderr()
        err_file.close()
        if not ended and not hung:
            tally.crashes[kind] += 1
            tally.note(kind, f"case {start + done}: worker died (status {proc.returncode}): {errors[-1500:]}")
            done += 1  # skip the crashing case
            tally.cases[kind] += 1
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all (default 100,000)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--workers", type=int, default=2, help="worker processes at a time")
    parser.add_argument("--batch", type=int, default=2000, help="cases per worker process")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"weights of the kinds (default {DEFAULT_MIX})")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.start, args.count, args.seed)
        return 0

    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    total_weight = sum(mix.values())
    per_kind = {k: int(round(args.cases * w / total_weight)) for k, w in mix.items() if w > 0}
    # Batch sizes: the slow kinds run in smaller batches so that the work spreads.
    batches = []
    for kind, n in per_kind.items():
        size = args.batch if kind in ("api", "file") else max(1, min(args.batch, 50))
        batches += [(kind, s, min(size, n - s)) for s in range(0, n, size)]
    random.Random(args.seed).shuffle(batches)
    deadline = time.monotonic() + (args.minutes * 60 if args.minutes else 10**9)
    tally, began = Tally(), time.monotonic()
    lock = threading.Lock()
    pending = list(batches)

    def runner():
        while True:
            with lock:
                if not pending:
                    return
                kind, start, count = pending.pop()
            run_batch(kind, start, count, args.seed, tally, args.hang_seconds, deadline)

    threads = [threading.Thread(target=runner) for _ in range(max(1, args.workers))]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            sys.stderr.write(f"\r{sum(tally.cases.values())} / {args.cases} cases, {time.monotonic() - began:.0f} s")
            sys.stderr.flush()
    finally:
        for t in threads:
            t.join()
    sys.stderr.write("\n")

    print(f"soak: {sum(tally.cases.values())} cases in {time.monotonic() - began:.0f} s (seed {args.seed})")
    print(f"{'kind':8} {'cases':>8} {'crashes':>8} {'hangs':>6} {'unexpected':>10}")
    for kind in per_kind:
        print(f"{kind:8} {tally.cases[kind]:>8} {tally.crashes[kind]:>8} {tally.hangs[kind]:>6} {tally.unexpected[kind]:>10}")
    print(f"{'total':8} {sum(tally.cases.values()):>8} {sum(tally.crashes.values()):>8} "
          f"{sum(tally.hangs.values()):>6} {sum(tally.unexpected.values()):>10}")
    print(f"peak RSS growth while loading one damaged file: {tally.rss_growth / 2**20:.1f} MiB "
          f"(files up to {tally.largest_file} bytes; bound 256 MiB)")
    print(f"files whose load cost more than twice their declared model size (or 256 MB when invalid "
          f"and under 10 MB): {tally.over_bound}")
    for kind, messages in tally.messages.items():
        for m in messages:
            print(f"  {kind}: {m}")
    bad = sum(tally.crashes.values()) + sum(tally.hangs.values()) + sum(tally.unexpected.values())
    return 1 if bad or tally.over_bound or tally.rss_growth > 256 * 2**20 else 0


if __name__ == "__main__":
    sys.exit(main())
