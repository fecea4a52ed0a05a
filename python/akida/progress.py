"""Progress reporting of long calls: the model calls (``forward``, ``predict``, ``evaluate``,
``fit``, through :class:`Reporter`, called by the engine between the chunks of a call) and the
long Python-side loops of ``akida.cnn2snn``, ``akida.converters`` and
:func:`akida.calibrate_thresholds` (through :class:`Progress`). All take two keywords:

- ``verbose``: False (the default) is quiet; True shows a progress bar on stderr, drawn by
  `tqdm <https://tqdm.github.io>`_ when it is installed (``pip install openakida[progress]``,
  detected at run time) and as plain text lines otherwise.
- ``callback``: a function called as ``callback(done, total)`` after each step (samples, for the
  model calls), for notebooks and GUIs (with or without ``verbose``). An exception it raises ends
  the call (a model call as Ctrl-C does: ``fit`` keeps what the samples before it learned).

Examples
--------
>>> from akida.progress import Progress
>>> seen = []
>>> with Progress(3, "demo", callback=lambda done, total: seen.append((done, total))) as bar:
...     for _ in range(3):
...         bar.update()
>>> seen
[(1, 3), (2, 3), (3, 3)]
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["Progress", "ProgressCallback", "Reporter"]

#: ``callback(done, total)``: steps done so far and the total.
ProgressCallback = Callable[[int, int], Any]


def _tqdm() -> Any:
    """The ``tqdm`` class, or None when tqdm is not installed."""
    try:
        return importlib.import_module("tqdm").tqdm
    except ImportError:
        return None


class Progress:
    """Counts the steps of one loop and reports them as ``verbose`` and ``callback`` ask.

    Parameters
    ----------
    total : int
        Number of steps.
    description : str
        What the loop does, shown before the bar.
    verbose : bool, default False
        Show a bar on stderr (tqdm when installed, else text lines).
    callback : callable, optional
        Called as ``callback(done, total)`` after every step.
    unit : str, default "step"
        Name of one step in the bar.
    """

    def __init__(
        self,
        total: int,
        description: str,
        verbose: bool = False,
        callback: Optional[ProgressCallback] = None,
        unit: str = "step",
    ) -> None:
        if not isinstance(verbose, (bool, np.bool_)):
            raise TypeError(f"verbose must be a bool, got {type(verbose).__name__} {verbose!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__} {callback!r}")
        self.total = int(total)
        self.done = 0
        self.description = description
        self._callback = callback
        self._bar: Any = None
        self._text = False
        if verbose:
            tqdm = _tqdm()
            if tqdm is not None:
                self._bar = tqdm(total=self.total, desc=description, unit=unit, file=sys.stderr)
            else:
                self._text = True
                self._show_text(final=False)

    def update(self, steps: int = 1) -> None:
        """Records ``steps`` more steps done."""
        self.done += steps
        if self._bar is not None:
            self._bar.update(steps)
        elif self._text:
            self._show_text(final=False)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def _show_text(self, final: bool) -> None:
        """The text fallback without tqdm: one line per step (nothing more at the end)."""
        if not final:
            print(f"{self.description}: {self.done}/{self.total}", file=sys.stderr)

    def close(self) -> None:
        """Ends the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Reporter(Progress):
    """The progress report of one model call (``forward``, ``predict``, ``evaluate``, ``fit``) of
    ``what`` over ``total`` samples, driven by the engine between the chunks of the call.

    ``update(done)`` is called after each chunk with the samples done so far, ``close()`` once at
    the end (also when the call fails or is interrupted). The callback is called with
    ``(0, total)`` first, then after each chunk; when the call completes the last call has
    ``done == total``. Without tqdm the bar is one line on stderr, redrawn at most every 0.1 s.
    """

    def __init__(self, what: str, total: int, verbose: bool, callback: Optional[ProgressCallback]) -> None:
        self._last_text = 0.0
        super().__init__(total, what, bool(verbose), callback, unit="sample")
        if callback is not None:
            callback(0, total)

    def update(self, done: int) -> None:  # type: ignore[override]
        super().update(done - self.done)

    def close(self) -> None:
        if self._text:
            self._show_text(final=True)
        super().close()

    def _show_text(self, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self._last_text < 0.1:
            return
        self._last_text = now
        percent = 100 * self.done // self.total if self.total else 100
        sys.stderr.write(f"\r{self.description}: {self.done}/{self.total} samples ({percent}%)")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()
