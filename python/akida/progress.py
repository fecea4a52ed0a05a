"""Progress reporting of the long Python-side loops (conversion, calibration, converters).

Every long loop of ``akida.cnn2snn``, ``akida.converters`` and :func:`akida.calibrate_thresholds`
takes two keywords:

- ``verbose``: False (the default) is quiet; True shows a progress bar on stderr, drawn by
  `tqdm <https://tqdm.github.io>`_ when it is installed (``pip install openakida[progress]``,
  detected at run time) and as plain text lines otherwise.
- ``callback``: a function called as ``callback(done, total)`` after each step, for notebooks
  and GUIs (with or without ``verbose``).

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
from typing import Any, Callable, Optional

__all__ = ["Progress", "ProgressCallback"]

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
        if not isinstance(verbose, bool) and type(verbose).__name__ != "bool_":
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
                print(f"{description}: 0/{self.total}", file=sys.stderr)

    def update(self, steps: int = 1) -> None:
        """Records ``steps`` more steps done."""
        self.done += steps
        if self._bar is not None:
            self._bar.update(steps)
        elif self._text:
            print(f"{self.description}: {self.done}/{self.total}", file=sys.stderr)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        """Ends the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
