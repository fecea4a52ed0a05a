"""Progress reports of long model calls (``forward``, ``predict``, ``evaluate``, ``fit``).

The engine calls :class:`Reporter` between the chunks of a call (see docs/api.md, "Progress"):
``verbose`` shows a bar (tqdm when it is installed, picked at run time; otherwise one plain line on
stderr), ``progress`` is a callable ``progress(done, total)`` for notebooks and GUIs. An exception
raised by the callback ends the call as Ctrl-C does.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

ProgressCallback = Callable[[int, int], Any]


class _PlainBar:
    """A one-line text bar on stderr, for when tqdm is not installed."""

    def __init__(self, what: str, total: int) -> None:
        self._what, self._total, self._last = what, total, 0.0

    def show(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < 0.1:
            return
        self._last = now
        percent = 100 * done // self._total if self._total else 100
        sys.stderr.write(f"\r{self._what}: {done}/{self._total} samples ({percent}%)")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _tqdm_class() -> Optional[type]:
    """tqdm's class (the notebook widget in Jupyter), or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Reporter:
    """The progress report of one call of ``what`` over ``total`` samples.

    ``update(done)`` is called after each chunk with the samples done so far, ``close()`` once at
    the end (also when the call fails or is interrupted). The callback is called with
    ``(0, total)`` first, then after each chunk; when the call completes the last call has
    ``done == total``.
    """

    def __init__(self, what: str, total: int, verbose: bool, callback: Optional[ProgressCallback]) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"progress must be a callable(done, total) or None, got {type(callback).__name__}")
        self._total, self._done, self._callback = total, 0, callback
        self._tqdm: Any = None
        self._plain: Optional[_PlainBar] = None
        if verbose:
            tqdm = _tqdm_class()
            if tqdm is not None:
                self._tqdm = tqdm(total=total, desc=what, unit="sample")
            else:
                self._plain = _PlainBar(what, total)
        if callback is not None:
            callback(0, total)

    def update(self, done: int) -> None:
        step, self._done = done - self._done, done
        if self._tqdm is not None:
            self._tqdm.update(step)
        if self._plain is not None:
            self._plain.show(done)
        if self._callback is not None:
            self._callback(done, self._total)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        if self._plain is not None:
            self._plain.show(self._done, final=True)
