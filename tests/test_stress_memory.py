"""Memory and files under stress: MemoryError instead of aborts under an address-space limit,
bounded memory on hostile files (decompression bombs, /dev/zero, pipes), loading that never
blocks deaf to Ctrl-C, OSError with errno / strerror / filename (disk full included), and no
temporary file left for good by ``kill -9`` during saves. docs/api.md, "Files and memory".

Every case that could abort, exhaust memory or block runs in a child interpreter
(tests/hostile_files.py); the allocations are scaled to a few hundred MB above a small
``RLIMIT_AS`` so that each child runs in about a second.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import akida

sys.path.insert(0, str(Path(__file__).parent))
import hostile_files as H  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc, RLIMIT_AS and fifos")

MiB = H.MiB

# After the MemoryError, the child must still work: a small model computes.
STILL_WORKS = """
small = akida.Model(layers=[akida.InputData(4, 4, 1), akida.FullyConnected(3)])
note("after", list(small.forward(np.ones((2, 4, 4, 1), np.uint8)).shape))
"""

# Each case: setup (unlimited), then the call that needs more memory than the limit leaves.
MEMORY_CASES = {
    # 2000 x 64 x 64 x 3 ones: 24.6 M events of 16 bytes (~390 MB) above a 200 MB limit
    "Events.from_dense": ("a = np.ones((2000, 64, 64, 3), np.uint8)", 200 * MiB, "akida.Events.from_dense(a)"),
    # 2048 x 1024 binary inputs x 1000 neurons: 2.1 GB of weights
    "Model(layers=...)": (
        "", 256 * MiB,
        "akida.Model(layers=[akida.InputData(2048, 1024, 1, input_bits=1), akida.FullyConnected(1000)])",
    ),
    # a 200 MB model: one more copy does not fit
    "to_buffer": ("m = big_model()", 120 * MiB, "m.to_buffer()"),
    "save .fb": ("m = big_model()", 100 * MiB, "m.save(folder + '/m.fb')"),
    "save .fbz": ("m = big_model()", 100 * MiB, "m.save(folder + '/m.fbz')"),
    "get_variable": ("m = big_model()", 120 * MiB, "m.layers[1].get_variable('weights')"),
    "set_variable": (
        "m = big_model(); w = np.zeros((200, 1000, 1, 1000), np.int64)", 200 * MiB,
        "m.layers[1].set_variable('weights', w)",
    ),
    # 3 samples of 300 KB in, a 100 M-neuron output: the output does not fit
    # a million 1-byte samples in, 1000 outputs each: the 1 GB output does not fit
    "forward (output)": (
        "x = np.ones((1_000_000, 1, 1, 1), np.uint8)\n"
        "m = akida.Model(layers=[akida.InputData(1, 1, 1), akida.FullyConnected(1000)])",
        100 * MiB, "m.forward(x)",
    ),
    # a 300 MB input: a private copy of it would not fit (computing it in chunks is fine too)
    "forward (input copy)": (
        "m = akida.Model(layers=[akida.InputData(1000, 200, 3), akida.FullyConnected(2)])\n"
        "x = np.ones((500, 200, 1000, 3), np.uint8)",
        100 * MiB, "m.forward(x)",
    ),
    # one sample with a 1 MB output, but 1000 filters over a 1024 x 1024 map before pooling: the
    # per-sample working buffers of about 18 GB are refused before the run
    "forward (working buffers)": (
        "m = akida.Model(layers=[akida.InputData(1024, 1024, 1, input_bits=1),\n"
        "                        akida.Convolutional(1, 1, 1000, weights_bits=2, pooling_type=akida.PoolingType.Max,\n"
        "                                            pooling_width=32, pooling_height=32)])\n"
        "x = np.zeros((1, 1024, 1024, 1), np.uint8)",
        256 * MiB, "m.forward(x)",
    ),
    # 12 M events from coordinate arrays
    "Events(...)": (
        "n = 12_000_000\n"
        "s = np.zeros(n, np.int64); x = np.arange(n) % 1000; y = np.arange(n) // 1000 % 1000\n"
        "c = np.zeros(n, np.int64); v = np.ones(n, np.int64)",
        100 * MiB, "akida.Events((1000, 1000, 1), s, x, y, c, v)",
    ),
    "Events.to_dense": (
        "e = akida.Events((20000, 20000, 1), [0], [1], [1], [0], [1], num_samples=1)",
        100 * MiB, "e.to_dense()",
    ),
    # a valid 200 KB .fbz holding 200 M zero weights
    "load .fbz": ("H.zero_weights_fbz(folder + '/z.fbz', 200_000_000)", 100 * MiB,
                  "akida.Model(folder + '/z.fbz', max_size=2**31 - 1)"),
}

# What some MemoryErrors must name.
NAMED = {
    "forward (working buffers)": "working buffers",
    "load .fbz": "decompressed model",
    "Model(layers=...)": "variable 'weights'",
    "get_variable": "a copy of variable 'weights'",
    "Events.from_dense": "events",
    "to_buffer": "model",
}

# Calls that may also succeed within the limit (no full copy needed), but never abort.
MAY_SUCCEED = {"forward (input copy)"}

BIG_MODEL = """
def big_model():
    m = akida.Model(layers=[akida.InputData(1000, 200, 1), akida.FullyConnected(1000)])
    m.layers[1].set_variable("weights", np.ones((200, 1000, 1, 1000), np.int8))
    return m
"""


@pytest.mark.parametrize("case", sorted(MEMORY_CASES))
def test_allocation_failures_raise_memory_error(case, tmp_path):
    setup, extra, call = MEMORY_CASES[case]
    code = (
        f"import sys, numpy as np, akida\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        f"import hostile_files as H\nfolder = {str(tmp_path)!r}\n{BIG_MODEL}\n{setup}\n"
        f"limit_address_space({extra})\n"
        f"try:\n    {call}\nexcept MemoryError as e:\n    note('memory_error', str(e))\n"
        f"{STILL_WORKS}"
    )
    result = H.run_child(code, timeout=120)
    assert result.returncode == 0, result.describe()
    assert result.outcome == "ok", result.describe()
    if case not in MAY_SUCCEED:
        assert "memory_error" in result.report, f"no MemoryError: {result.describe()}"
        assert NAMED.get(case, "") in result.report["memory_error"], result.report
    assert result.report["after"] == [2, 1, 1, 3], result.report
    # no file of a failed save is left
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_memory_error_children_really_ran_out():
    """The same code without the limit succeeds: the MemoryErrors above come from the limit."""
    code = "import numpy as np, akida\na = np.ones((200, 64, 64, 3), np.uint8)\nnote('events', len(akida.Events.from_dense(a)))"
    result = H.run_child(code)
    assert result.outcome == "ok" and result.report["events"] == 200 * 64 * 64 * 3, result.describe()


# ----------------------------------------------------------------------------------------------
# Hostile files: bounded memory, early refusal
# ----------------------------------------------------------------------------------------------


def _assert_refused_cheaply(result: H.ChildResult, limit: int = 64 * MiB) -> None:
    assert result.returncode == 0 and result.outcome == "ModelFormatError", result.describe()
    assert result.report["hwm_reset"], "the kernel does not allow resetting VmHWM"
    assert result.extra_peak <= limit, f"{result.extra_peak / MiB:.0f} MiB: {result.describe()}"


def test_decompression_bomb_of_zeros_costs_no_memory(tmp_path):
    bomb = tmp_path / "bomb.fbz"
    bomb.write_bytes(H.zero_bomb(2**31 - 1))  # 2 MB inflating to 2 GiB (- 1 byte) of zeros
    assert bomb.stat().st_size < 3 * MiB
    default = H.measure_load(bomb)  # over the default cap: refused from its header
    _assert_refused_cheaply(default, 16 * MiB)
    assert "max_size" in default.message
    raised = H.measure_load(bomb, max_size=2**31 - 1)  # inflated: refused at its first bytes
    _assert_refused_cheaply(raised)
    assert "AKDA" in raised.message


@pytest.mark.parametrize("filler", [0x00, 0x01, 0xFF])
def test_bomb_with_a_valid_head_is_refused_early(filler, tmp_path):
    bomb = tmp_path / "headed.fbz"
    bomb.write_bytes(H.filler_bomb(1 << 30, filler))
    result = H.measure_load(bomb, max_size=2**31 - 1)
    _assert_refused_cheaply(result)
    assert "vtable" in result.message
    assert result.seconds < 10


def test_bomb_refused_only_after_inflating_stays_within_its_declared_size(tmp_path):
    """A real model's bytes then filler, with a damaged checksum: refused only once inflated;
    zero filler costs nothing, other filler at most the declared size."""
    head = H.small_model_bytes(3)
    for filler, bound in ((0x00, 16 * MiB), (0x01, 64 * MiB + 16 * MiB)):
        data = bytearray(H.filler_bomb(64 * MiB, filler, head=head))
        data[-1] ^= 0xFF  # the Adler-32 checksum: known bad only at the very end
        bomb = tmp_path / f"late-{filler}.fbz"
        bomb.write_bytes(bytes(data))
        result = H.measure_load(bomb)
        assert result.outcome == "ModelFormatError" and "decompression failed" in result.message, result.describe()
        assert result.extra_peak <= bound, f"{result.extra_peak / MiB:.0f} MiB"


def test_dev_zero_and_urandom_are_refused_at_once():
    for device in ("/dev/zero", "/dev/urandom"):
        result = H.measure_load(device)
        _assert_refused_cheaply(result, 16 * MiB)
        assert result.seconds < 10


def _fifo(tmp_path: Path, name: str = "pipe.fb") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def test_fifo_without_writer_is_interruptible(tmp_path):
    fifo = _fifo(tmp_path)
    code = f"import akida\nprint('loading', flush=True)\nakida.Model({str(fifo)!r})"
    process = H.start_child(code)
    started = time.monotonic()
    assert process.stdout.readline().strip() == "loading"
    time.sleep(0.5)  # the child is now waiting for a writer
    assert process.poll() is None, "loading a fifo without a writer returned"
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    result = H.finish_child(process, 20, started)
    assert result.outcome == "KeyboardInterrupt", result.describe()
    assert result.seconds - (sent - started) < 2.0, f"the interrupt took {result.seconds - (sent - started):.2f} s"


def _write_to_fifo(path: Path, chunks, stop: threading.Event) -> threading.Thread:
    def writer():
        try:
            with open(path, "wb") as f:
                for chunk in chunks:
                    if stop.is_set():
                        return
                    f.write(chunk)
        except (BrokenPipeError, OSError):
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


def test_fifo_trickling_data_is_interruptible(tmp_path):
    """A writer that sends a valid head, then a byte every 20 ms: loading still answers Ctrl-C."""
    fifo = _fifo(tmp_path)
    stop = threading.Event()

    def trickle():
        yield H.FLATBUFFER_HEAD
        while not stop.is_set():
            time.sleep(0.02)
            yield b"\x01"

    code = f"import akida\nprint('loading', flush=True)\nakida.Model({str(fifo)!r})"
    process = H.start_child(code)
    started = time.monotonic()
    thread = _write_to_fifo(fifo, trickle(), stop)
    try:
        assert process.stdout.readline().strip() == "loading"
        time.sleep(0.5)
        assert process.poll() is None
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        result = H.finish_child(process, 20, started)
    finally:
        stop.set()
    thread.join(10)
    assert result.outcome == "KeyboardInterrupt", result.describe()
    assert result.seconds - (sent - started) < 2.0


def test_fifo_delivering_a_model_loads_it(tmp_path):
    fifo = _fifo(tmp_path)
    data = H.small_model_bytes(5, compressed=True)
    stop = threading.Event()
    thread = _write_to_fifo(fifo, [data[:7], data[7:]], stop)
    loaded = akida.Model(fifo)
    thread.join(10)
    assert not thread.is_alive()
    assert loaded.to_buffer() == akida.Model(serialized_buffer=H.small_model_bytes(5)).to_buffer()


def test_endless_fifo_stops_at_the_cap(tmp_path):
    fifo = _fifo(tmp_path)
    stop = threading.Event()
    endless = (H.FLATBUFFER_HEAD + bytes(MiB - 16) if i == 0 else b"\x01" * MiB for i in range(10**6))
    thread = _write_to_fifo(fifo, endless, stop)
    try:
        result = H.measure_load(fifo, max_size=32 * MiB)
    finally:
        stop.set()
    thread.join(10)
    assert result.outcome == "ModelFormatError" and "max_size" in result.message, result.describe()
    assert result.extra_peak <= 2 * 32 * MiB + 16 * MiB, f"{result.extra_peak / MiB:.0f} MiB"


def test_damaged_files_cost_bounded_memory(tmp_path):
    """Damaged small files (both encodings) and bombs: each load costs at most what
    hostile_files.allowed_peak allows (twice the declared size, and 256 MB for an invalid file
    under 10 MB), and none crashes the child."""
    rng = np.random.default_rng(12)
    files = []
    for i in range(160):
        files.append((f"d{i}.{'fbz' if i % 2 else 'fb'}", H.damaged(H.small_model_bytes(i % 8, compressed=bool(i % 2)), rng)))
    for i, declared in enumerate((256 * MiB, 1 << 30)):
        files += [(f"zb{i}.fbz", H.zero_bomb(declared)), (f"fb{i}.fbz", H.filler_bomb(declared, 0x01))]
    paths = []
    for name, data in files:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    for max_size in (None, 2**31 - 1):
        result = H.run_child(H.load_many_code(paths, max_size), timeout=120)
        assert result.returncode == 0 and result.outcome == "ok", result.describe()
        outcomes = result.report["results"]
        assert len(outcomes) == len(paths)
        assert {o for o, _ in outcomes} <= {"ok", "ModelFormatError"}, outcomes
        for (name, data), (outcome, extra) in zip(files, outcomes):
            bound = H.allowed_peak(data, invalid=outcome != "ok")
            assert extra <= bound, f"{name}: {outcome}, {extra / MiB:.1f} MiB > {bound / MiB:.1f} MiB"


# ----------------------------------------------------------------------------------------------
# Memory of saving and serializing
# ----------------------------------------------------------------------------------------------


def test_serializing_holds_at_most_one_extra_copy(tmp_path):
    code = f"""
import akida, numpy as np
m = akida.Model(layers=[akida.InputData(1000, 100, 1), akida.FullyConnected(1000)])
m.layers[1].set_variable("weights", np.ones((100, 1000, 1, 1000), np.int8))
size = 100 * 1000 * 1000
for what in ("to_buffer", "save_fb", "save_fbz"):
    mark()
    if what == "to_buffer":
        b = m.to_buffer()
        del b
    else:
        m.save({str(tmp_path)!r} + "/m." + what[5:])
    note(what, (_status_bytes("VmHWM") - _report["rss_before"]) / size)
"""
    result = H.run_child(code, timeout=120)
    assert result.outcome == "ok", result.describe()
    # to_buffer: the serialized buffer and the bytes object; save: the serialized buffer only
    assert result.report["to_buffer"] < 2.2, result.report
    assert result.report["save_fb"] < 1.2, result.report
    assert result.report["save_fbz"] < 1.2, result.report
    loaded = akida.Model(tmp_path / "m.fbz")
    assert loaded.layers[1].get_variable("weights").min() == 1


# ----------------------------------------------------------------------------------------------
# OS errors
# ----------------------------------------------------------------------------------------------


def _small_model():
    return akida.Model(layers=[akida.InputData(4, 4, 1), akida.FullyConnected(3)])


def test_os_errors_carry_errno_strerror_and_the_users_path(tmp_path):
    missing = tmp_path / "absent.fb"
    with pytest.raises(FileNotFoundError) as e:
        akida.Model(missing)
    assert (e.value.errno, e.value.filename) == (errno.ENOENT, str(missing))
    assert e.value.strerror == os.strerror(errno.ENOENT)
    target = tmp_path / "no" / "such" / "m.fbz"
    with pytest.raises(FileNotFoundError) as e:
        _small_model().save(target)
    assert (e.value.errno, e.value.filename) == (errno.ENOENT, str(target))
    (tmp_path / "folder.fb").mkdir()
    with pytest.raises(IsADirectoryError) as e:
        akida.Model(tmp_path / "folder.fb")
    assert (e.value.errno, e.value.filename) == (errno.EISDIR, str(tmp_path / "folder.fb"))
    with pytest.raises(IsADirectoryError) as e:
        _small_model().save(tmp_path / "folder.fb")
    assert e.value.filename == str(tmp_path / "folder.fb")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError) as e:
        _small_model().save(tmp_path / "file" / "m.fb")
    assert (e.value.errno, e.value.filename) == (errno.ENOTDIR, str(tmp_path / "file" / "m.fb"))
    # the temporary file is never what errors name, and nothing is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.fb"]
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError) as e:
            _small_model().save(locked / "m.fb")
        assert (e.value.errno, e.value.filename) == (errno.EACCES, str(locked / "m.fb"))


def _tmpfs_prefix(mountpoint: Path, size: str) -> list[str] | None:
    """A command prefix running the child in its own mount namespace with a tiny tmpfs mounted at
    `mountpoint` (unprivileged user namespaces, or root), or None when that is impossible here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "-rm", "sh", "-c", f'mount -t tmpfs -o size={size} none "{mountpoint}" && exec "$0" "$@"']
    probe = subprocess.run(prefix + ["true"], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


def test_disk_full_is_oserror_enospc(tmp_path):
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    prefix = _tmpfs_prefix(mountpoint, "256k")
    if prefix is None:
        pytest.skip("cannot mount a small tmpfs here (no unshare or user namespaces): ENOSPC untested")
    target = mountpoint / "m.fbz"
    code = f"""
import os, numpy as np, akida
m = akida.Model(layers=[akida.InputData(100, 100, 1), akida.FullyConnected(100, weights_bits=4)])
rng = np.random.default_rng(0)  # random 4-bit weights: both files exceed the 256 KiB disk
m.layers[1].set_variable("weights", rng.integers(-7, 8, size=(100, 100, 1, 100), dtype=np.int8))
for name in ("m.fb", "m.fbz"):
    try:
        m.save({str(mountpoint)!r} + "/" + name)
    except OSError as e:
        note(name, [type(e).__name__, e.errno, e.strerror, e.filename])
note("left", sorted(os.listdir({str(mountpoint)!r})))
"""
    result = H.run_child(code, prefix=prefix, timeout=60)
    assert result.outcome == "ok", result.describe()
    for name in ("m.fb", "m.fbz"):
        assert result.report.get(name) == ["OSError", errno.ENOSPC, os.strerror(errno.ENOSPC),
                                           str(target.with_name(name))], result.report
    assert result.report["left"] == [], result.report


# ----------------------------------------------------------------------------------------------
# kill -9 during save
# ----------------------------------------------------------------------------------------------

# One child builds the model once, then forks savers on request: each saves in a loop (.fbz and
# .fb in turn) until killed; exited savers are reaped at once (SIGCHLD ignored), so that a killed
# saver's process id is free, as after a real kill -9.
FORKER = """
import os, signal, sys
import akida, numpy as np
m = akida.Model(layers=[akida.InputData(200, 100, 1, input_bits=1), akida.FullyConnected(250)])
m.layers[1].set_variable("weights", np.random.default_rng(1).integers(0, 2, size=(100, 200, 1, 250), dtype=np.int8))
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            m.save({path!r} if i % 2 else {path!r}.replace(".fb", ".fbz"))
            i += 1
    print(pid, flush=True)
"""


def _named_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_killed_saves_leave_no_temporary_file(tmp_path):
    """20 saving processes killed (SIGKILL) at random moments of their saves."""
    rng = np.random.default_rng(4)
    path = tmp_path / "model.fb"
    forker = subprocess.Popen([sys.executable, "-c", FORKER.format(path=str(path))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert forker.stdout.readline().strip() == "ready"
        for _ in range(20):
            forker.stdin.write("go\n")
            forker.stdin.flush()
            saver = int(forker.stdout.readline())
            time.sleep(float(rng.uniform(0.005, 0.1)))
            os.kill(saver, signal.SIGKILL)
    finally:
        forker.stdin.close()
        forker.wait(30)
        forker.stdout.close()
    time.sleep(0.1)  # the last savers are reaped
    # unnamed temporary files vanish with their process; a named one can only remain from a kill
    # between linking and renaming, and the next save to that path removes it
    left = _named_temporaries(tmp_path)
    assert len(left) <= 3, left
    for target in (path, path.with_suffix(".fbz")):
        _small_model().save(target)
        akida.Model(target)
    assert _named_temporaries(tmp_path) == []
    assert {p.name for p in tmp_path.iterdir()} == {"model.fb", "model.fbz"}


def test_stale_named_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = os.getppid()
    stale = tmp_path / f".model.fb.{dead.pid}-0.tmp"
    in_progress = tmp_path / f".model.fb.{alive}-3.tmp"
    other = tmp_path / f".other.fb.{dead.pid}-0.tmp"
    for p in (stale, in_progress, other):
        p.write_bytes(b"partial")
    _small_model().save(tmp_path / "model.fb")
    assert not stale.exists()
    assert in_progress.exists() and other.exists()  # a live writer, another file's temporary
