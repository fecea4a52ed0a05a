"""Hostile and damaged model files, and measuring what loading them costs.

Shared by tests/test_stress_memory.py and scripts/soak.py:

- generators of hostile inputs: decompression bombs (:func:`zero_bomb`, :func:`filler_bomb`),
  a valid ``.fbz`` of many zero weights (:func:`zero_weights_fbz`), and :func:`damaged` (random
  truncations, bit flips, overwritten runs, duplicated chunks, changed declared sizes) of valid
  model bytes (:func:`small_model_bytes`);
- :func:`run_child`: runs Python code in a fresh interpreter, optionally under an address-space
  limit (``RLIMIT_AS``) a given number of bytes above what it already uses, and returns how it
  ended (exception class and message, exit status: an abort shows as a negative return code)
  with the peak resident memory of the measured part (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``, less the resident memory before);
- :func:`measure_load`: ``akida.Model(path, ...)`` in such a child: outcome, extra peak RSS, time.

Only the standard library and numpy are imported here (akida only in the children).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MiB = 1 << 20
COMPRESSED_MAGIC = b"AKZ1"

# Runs in every child before its code: helpers to limit the address space and mark the start of
# the measured part, and the report printed at the end.
_PRELUDE = r'''
import json as _json, os as _os, re as _re, resource as _resource, sys as _sys

def _status_bytes(key):
    with open("/proc/self/status") as f:
        match = _re.search(key + r":\s+(\d+) kB", f.read())
    return int(match.group(1)) * 1024 if match else 0

_report = {"outcome": "ok", "message": "", "rss_before": 0, "peak": 0, "hwm_reset": False}

def limit_address_space(extra):
    """Caps the address space at what the process maps now plus `extra` bytes."""
    _resource.setrlimit(_resource.RLIMIT_AS, (_status_bytes("VmSize") + extra, _resource.RLIM_INFINITY))

def mark():
    """Starts the measured part: resets the peak RSS (when the kernel allows) and records the RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _report["hwm_reset"] = True
    except OSError:
        pass
    _report["rss_before"] = _status_bytes("VmRSS")

def note(key, value):
    _report[key] = value
'''

_EPILOGUE = r'''
_report["peak"] = _status_bytes("VmHWM")
print("REPORT " + _json.dumps(_report), flush=True)
'''


@dataclass
class ChildResult:
    """How a child ended: its exit status, output and report."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        """The class name of the exception the code raised, "ok", or "died" without a report."""
        return self.report.get("outcome", "died")

    @property
    def message(self) -> str:
        return self.report.get("message", "")

    @property
    def extra_peak(self) -> int:
        """Peak resident bytes of the measured part above the resident bytes at its start."""
        return max(0, self.report.get("peak", 0) - self.report.get("rss_before", 0))

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-8:])
        return f"returncode {self.returncode}, outcome {self.outcome}: {self.message}\n{tail}"


def child_script(code: str) -> str:
    """The full script of a child running `code`; exceptions are reported, not raised."""
    body = textwrap.indent(textwrap.dedent(code), "    ")
    return (
        _PRELUDE
        + "try:\n"
        + body
        + "\nexcept BaseException as _e:\n"
        + "    _report['outcome'] = type(_e).__name__\n"
        + "    _report['message'] = str(_e)[:2000]\n"
        + "    for _name in ('errno', 'strerror', 'filename'):\n"
        + "        if hasattr(_e, _name):\n"
        + "            _report[_name] = getattr(_e, _name)\n"
        + _EPILOGUE
    )


def start_child(code: str, *, env: dict[str, str] | None = None, prefix: list[str] | None = None) -> subprocess.Popen:
    """Starts a child running `code` (see :func:`child_script`); `prefix` wraps the interpreter
    (e.g. ``["unshare", "-rm", ...]``)."""
    command = (prefix or []) + [sys.executable, "-c", child_script(code)]
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("RAYON_NUM_THREADS", "2")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)


def finish_child(process: subprocess.Popen, timeout: float, started: float) -> ChildResult:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        return ChildResult(-9, stdout, stderr + "\n(timed out: killed)", {"outcome": "hang"}, time.monotonic() - started)
    report: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("REPORT "):
            report = json.loads(line[len("REPORT "):])
    return ChildResult(process.returncode, stdout, stderr, report, time.monotonic() - started)


def run_child(code: str, *, timeout: float = 60.0, env: dict[str, str] | None = None,
              prefix: list[str] | None = None) -> ChildResult:
    """Runs `code` in a fresh interpreter and returns how it ended. The code may call
    ``limit_address_space(extra_bytes)``, ``mark()`` (start of the measured part) and
    ``note(key, value)`` (extra report entries)."""
    started = time.monotonic()
    return finish_child(start_child(code, env=env, prefix=prefix), timeout, started)


def measure_load(source: str | os.PathLike[str] | bytes, *, max_size: int | None = None,
                 address_space: int | None = None, timeout: float = 60.0) -> ChildResult:
    """``akida.Model(source)`` (a path, or bytes as ``serialized_buffer``) in a child: its outcome,
    the extra peak RSS of the loading, and the time. `address_space`: an ``RLIMIT_AS`` of that many
    bytes above what the child maps before loading."""
    keyword = "" if max_size is None else f", max_size={max_size}"
    if isinstance(source, bytes):
        spilled = str(_spill(source))
        load = f"import os\nwith open({spilled!r}, 'rb') as f:\n    data = f.read()\nos.remove({spilled!r})\n"
        call = f"akida.Model(serialized_buffer=data{keyword})"
    else:
        load = ""
        call = f"akida.Model({os.fspath(source)!r}{keyword})"
    limit = "" if address_space is None else f"limit_address_space({address_space})\n"
    code = f"import akida\n{load}mark()\n{limit}model = {call}\nnote('layers', len(model.layers))\n"
    return run_child(code, timeout=timeout)


def _spill(data: bytes) -> Path:
    """`data` in a temporary file (children read buffers from files, not argv)."""
    import tempfile

    handle, name = tempfile.mkstemp(prefix="akida-hostile-", suffix=".bin")
    with os.fdopen(handle, "wb") as f:
        f.write(data)
    return Path(name)


# The resident memory below which a load is not judged: allocator arenas, thread stacks and
# interpreter noise of a child amount to a few MB whatever the file.
RSS_FLOOR = 16 * MiB


def declared_model_size(data: bytes) -> int:
    """The model size a file declares: the uncompressed size in a ``.fbz`` header, else its length."""
    if data.startswith(COMPRESSED_MAGIC) and len(data) >= 12:
        return int.from_bytes(data[4:12], "little")
    return len(data)


def allowed_peak(data: bytes, invalid: bool) -> int:
    """The peak extra RSS loading `data` may cost (the acceptance of issue 12): at most twice the
    declared model size, and for an invalid file under 10 MB at most 256 MB; never judged below
    :data:`RSS_FLOOR`."""
    bound = 2 * declared_model_size(data)
    if invalid and len(data) < 10 * 1000**2:
        bound = min(bound, 256 * 1000**2)
    return max(bound, RSS_FLOOR)


# ----------------------------------------------------------------------------------------------
# Generators
# ----------------------------------------------------------------------------------------------


def _zlib_of_repeated(head: bytes, filler: int, total: int) -> bytes:
    """The zlib stream of `head` followed by `filler` bytes up to `total` bytes, fast: the data is
    deflated in 1 MiB blocks each ending with a full flush (which resets the history), so every
    full block of filler compresses to the same bytes, computed once; the Adler-32 checksum is
    computed over the whole data."""
    if total < len(head):
        raise ValueError("total must hold the head")
    block = bytes([filler]) * MiB
    first_len = min(total, MiB)
    first = head + block[: first_len - len(head)]
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [b"\x78\xda", compressor.compress(first) + compressor.flush(zlib.Z_FULL_FLUSH)]
    checksum = zlib.adler32(first)
    remaining = total - first_len
    full_blocks, tail = divmod(remaining, MiB)
    if full_blocks:
        repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
        parts.append(repeated * full_blocks)
        for _ in range(full_blocks):
            checksum = zlib.adler32(block, checksum)
    parts.append(compressor.compress(block[:tail]) + compressor.flush(zlib.Z_FINISH))
    checksum = zlib.adler32(block[:tail], checksum)
    parts.append(checksum.to_bytes(4, "big"))
    return b"".join(parts)


def fbz(declared: int, stream: bytes) -> bytes:
    """A ``.fbz`` buffer: magic, declared uncompressed size, zlib stream."""
    return COMPRESSED_MAGIC + int(declared).to_bytes(8, "little") + stream


def zero_bomb(declared: int = 2 << 30) -> bytes:
    """A ``.fbz`` that inflates to `declared` zero bytes (about declared / 1000 compressed)."""
    return fbz(declared, _zlib_of_repeated(b"", 0, declared))


# The first bytes of a FlatBuffer with the akida identifier and a root table at offset 16.
FLATBUFFER_HEAD = (16).to_bytes(4, "little") + b"AKDA" + bytes(8)


def filler_bomb(declared: int, filler: int = 0x01, head: bytes = FLATBUFFER_HEAD) -> bytes:
    """A ``.fbz`` that inflates to `head` then `filler` bytes up to `declared`: it passes the
    identifier check and is refused only by structure checks (at the head or after inflating)."""
    return fbz(declared, _zlib_of_repeated(head, filler, declared))


def small_model_bytes(seed: int = 0, compressed: bool = False) -> bytes:
    """Bytes of a small random model (``.fb``; ``.fbz`` when `compressed`). Imports akida."""
    import tempfile

    import akida

    rng = np.random.default_rng(seed)
    width, height, channels = (int(v) for v in rng.integers(2, 9, size=3))
    model = akida.Model(layers=[
        akida.InputData(width, height, channels, input_bits=int(rng.choice([1, 2, 4, 8]))),
        akida.FullyConnected(int(rng.integers(1, 16)), weights_bits=4),
    ])
    shape = model.layers[1].get_variable("weights").shape
    model.layers[1].set_variable("weights", rng.integers(-7, 8, size=shape, dtype=np.int8))
    if not compressed:
        return model.to_buffer()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.fbz"
        model.save(path)
        return path.read_bytes()


def zero_weights_model_code(path: str | os.PathLike[str], weights: int) -> str:
    """Python code writing to `path` a valid model of InputData and one FullyConnected layer
    holding about `weights` zero weights (a ``.fbz`` of them is about weights / 1000 bytes)."""
    neurons = 1000
    width = 1000
    height = max(1, weights // (neurons * width))
    return (
        "import akida\n"
        f"m = akida.Model(layers=[akida.InputData({width}, {height}, 1, input_bits=1), akida.FullyConnected({neurons})])\n"
        f"m.save({os.fspath(path)!r})\n"
    )


def zero_weights_fbz(path: str | os.PathLike[str], weights: int, timeout: float = 120.0) -> Path:
    """Writes (in a child, to keep this process small) a valid ``.fbz`` of about `weights` zero
    weights to `path`."""
    result = run_child(zero_weights_model_code(path, weights), timeout=timeout)
    if result.outcome != "ok":
        raise RuntimeError(f"could not write the model: {result.describe()}")
    return Path(path)


DAMAGE_KINDS = ("truncate", "flip", "overwrite", "duplicate", "declared", "zero_tail", "splice")


def damaged(data: bytes, rng: np.random.Generator, kind: str | None = None) -> bytes:
    """A damaged copy of the model bytes `data`, by `kind` (random when None): a truncation, a
    few bit flips, a run of bytes overwritten by random or extreme values, a duplicated chunk, a
    changed declared size (``.fbz``), a zeroed tail, or a splice of random bytes."""
    kind = kind or str(rng.choice(DAMAGE_KINDS))
    b = bytearray(data)
    n = len(b)
    if kind == "truncate":
        return bytes(b[: int(rng.integers(0, n))])
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, n))
            b[i] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    if kind == "overwrite":
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, 17))
        value = rng.choice([0x00, 0xFF, 0x7F, 0x80, -1])
        run = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes() if value == -1 else bytes([int(value)]) * length
        b[start:start + length] = run
        return bytes(b[:n])
    if kind == "duplicate":
        start = int(rng.integers(0, n))
        end = min(n, start + int(rng.integers(1, 256)))
        return bytes(b[:end] + b[start:end] + b[end:])
    if kind == "declared" and data.startswith(COMPRESSED_MAGIC):
        declared = int.from_bytes(b[4:12], "little")
        choice = int(rng.integers(0, 4))
        new = [declared - 1, declared + 1, declared * 1000, (1 << 31) - 1][choice]
        b[4:12] = max(0, new).to_bytes(8, "little")
        return bytes(b)
    if kind == "zero_tail":
        start = int(rng.integers(0, n))
        b[start:] = bytes(n - start)
        return bytes(b)
    # splice (and "declared" on uncompressed data): random bytes inserted somewhere
    start = int(rng.integers(0, n))
    junk = rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    return bytes(b[:start] + junk + b[start:])


def load_many_code(paths: list[str], max_size: int | None = None) -> str:
    """Child code loading every file of `paths`, noting per file the outcome and the extra peak
    RSS (``results``: list of [outcome, extra_peak_bytes])."""
    keyword = "" if max_size is None else f", max_size={max_size}"
    return f"""
import akida
results = []
for path in {paths!r}:
    mark()
    try:
        akida.Model(path{keyword})
        outcome = "ok"
    except (akida.ModelFormatError, MemoryError, OSError) as e:
        outcome = type(e).__name__
    results.append([outcome, max(0, _status_bytes("VmHWM") - _report["rss_before"])])
note("results", results)
"""
