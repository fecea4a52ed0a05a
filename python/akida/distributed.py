"""Running akida models and parameter sweeps on a Dask cluster (see docs/distributed.md).

- :func:`forward`, :func:`evaluate`, :func:`predict`: one model over many inputs, a block of
  samples per task, results back in order and equal to the single-process call.
- :func:`sweep`: one function over the points of a parameter grid, a point per task, results in
  grid order.

The model travels once per worker: it is written as a compressed ``.fbz`` buffer (the bytes of
``Model.save(path.fbz)``; ``Model.to_buffer()`` gives the uncompressed ``.fb`` bytes),
scattered to every worker with ``client.scatter(..., broadcast=True)``, and each worker process
loads it once into a cache keyed by the buffer's SHA-256, so later tasks reuse the loaded model.

dask and distributed are optional (``pip install openakida[distributed]``) and imported only
when a function runs. Without a client (``client=None`` and no current client from
``distributed.Client(...)``), everything runs in this process, in the same blocks.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["forward", "evaluate", "predict", "sweep", "model_payload"]

DEFAULT_BATCH = 1024
# Models kept loaded per worker process (least recently used dropped first).
CACHE_SIZE = 4

_cache: OrderedDict[str, Any] = OrderedDict()
_cache_lock = threading.Lock()


def _require() -> Any:
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "akida.distributed needs dask and distributed: pip install openakida[distributed] "
            '(or pip install "dask[distributed]")'
        ) from e
    return distributed


def _client(client: Any) -> Any:
    """The given client, else the current one, else None (run in this process)."""
    if client is not None:
        return client
    distributed = _require()
    try:
        return distributed.get_client()
    except ValueError:
        return None


def model_payload(model: Any) -> tuple[str, bytes]:
    """``(sha256 hex, .fbz bytes)`` of a model: what is sent to the workers."""
    with tempfile.TemporaryDirectory(prefix="akida-") as folder:
        path = os.path.join(folder, "model.fbz")
        model.save(path)
        with open(path, "rb") as f:
            data = f.read()
    return hashlib.sha256(data).hexdigest(), data


def _load_cached(key: str, payload: bytes) -> Any:
    """The model of ``payload``, loaded once per process."""
    import akida

    with _cache_lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            return model
    # Our own .fbz bytes of a model that exists: no cap below the format's limit (max_size).
    model = akida.Model(serialized_buffer=payload, max_size=2**31 - 1)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def _aligned(value: Any) -> Any:
    """Arrays deserialized by Dask can be misaligned, which the engine refuses: copy those."""
    if isinstance(value, np.ndarray) and not (value.flags.aligned and value.flags.c_contiguous):
        return np.require(value, requirements=["C", "A"])
    return value


def _as_batch(block: Any) -> np.ndarray:
    """A block of samples: an array ``(n, H, W, C)``, or a list of samples ``(H, W, C)`` or of
    batches ``(n, H, W, C)`` (a dask bag partition)."""
    if isinstance(block, np.ndarray):
        return _aligned(block)
    items = [np.asarray(item) for item in block]
    if not items:
        raise ValueError("an empty partition: every block needs at least one sample")
    if all(item.ndim == 3 for item in items):
        return np.stack(items)
    return np.concatenate(items)


def _run_block(key: str, payload: bytes, method: str, block: Any, kwargs: dict[str, Any]) -> np.ndarray:
    model = _load_cached(key, payload)
    return getattr(model, method)(_as_batch(block), **kwargs)


def _blocks(dataset: Any, batch_size: int, client: Any) -> tuple[list[Any], bool]:
    """The dataset as a list of blocks in sample order: futures / delayed objects on a cluster
    (second value True), or in-memory blocks."""
    import dask.array as da
    import dask.bag as db

    if isinstance(dataset, da.Array):
        if dataset.ndim != 4:
            raise ValueError(f"expected a 4-D dask array (N, H, W, C), got {dataset.ndim} dimensions")
        dataset = dataset.rechunk({1: -1, 2: -1, 3: -1})
        parts = list(dataset.to_delayed().ravel())
    elif isinstance(dataset, db.Bag):
        parts = list(dataset.to_delayed())
    elif isinstance(dataset, np.ndarray):
        step = max(1, batch_size)
        parts = [dataset[start : start + step] for start in range(0, len(dataset), step)] or [dataset]
        return parts, False
    elif isinstance(dataset, (list, tuple)):
        return list(dataset), False
    else:
        raise TypeError(
            f"dataset must be a dask array, a dask bag, a numpy array or a list of arrays, not {type(dataset).__name__}"
        )
    if client is None:
        import dask

        return list(dask.compute(*parts, scheduler="sync")), False
    return parts, True


def _broadcast(client: Any, value: Any, attempts: int = 3) -> Any:
    """``client.scatter(value, broadcast=True)``, tried again if a worker leaves meanwhile."""
    for attempt in range(attempts):
        try:
            return client.scatter(value, broadcast=True, hash=False)
        except (KeyError, OSError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _map_model(
    method: str, model: Any, dataset: Any, client: Any, batch_size: int | None, retries: int, kwargs: dict[str, Any]
) -> np.ndarray:
    client = _client(client)
    if batch_size is not None:
        kwargs = dict(kwargs, batch_size=batch_size)
    parts, lazy = _blocks(dataset, batch_size or DEFAULT_BATCH, client)
    key, payload = model_payload(model)
    if client is None:
        results = [_run_block(key, payload, method, part, kwargs) for part in parts]
    else:
        shared = _broadcast(client, payload)  # before any block runs: a worker may die while it computes one
        if lazy:
            parts = client.compute(parts)  # the blocks are computed where the data is
        elif parts:
            parts = client.scatter(parts)
        futures = [
            client.submit(_run_block, key, shared, method, part, kwargs, pure=False, retries=retries)
            for part in parts
        ]
        results = client.gather(futures)
    if not results:
        return getattr(model, method)(np.zeros((0, *model.input_shape), np.uint8), **kwargs)
    return np.concatenate(results)


def forward(model: Any, dataset: Any, client: Any = None, batch_size: int | None = None, retries: int = 2) -> np.ndarray:
    """``model.forward`` over ``dataset``, one task per block.

    Parameters
    ----------
    model : akida.Model
    dataset : dask.array.Array, dask.bag.Bag, numpy array, or list of arrays
        A dask array ``(N, H, W, C)`` chunked along the samples (one task per chunk; other axes
        are rechunked to one chunk), a dask bag whose elements are samples ``(H, W, C)`` or
        batches (one task per partition), a numpy array (cut into ``batch_size`` blocks), or a
        list of batches ``(n, H, W, C)`` (one task each). uint8, as for ``Model.forward``.
    client : distributed.Client, optional
        Default: the current client; none: this process.
    batch_size : int, optional
        Passed to the model call; also the block size of a numpy array (default 1024).
    retries : int
        How many times a task is retried when it fails or its worker dies.

    Returns
    -------
    numpy.ndarray
        The outputs of every block concatenated in order: equal to ``model.forward(all inputs)``.
    """
    return _map_model("forward", model, dataset, client, batch_size, retries, {})


def evaluate(model: Any, dataset: Any, client: Any = None, batch_size: int | None = None, retries: int = 2) -> np.ndarray:
    """``model.evaluate`` over ``dataset``; see :func:`forward`."""
    return _map_model("evaluate", model, dataset, client, batch_size, retries, {})


def predict(
    model: Any,
    dataset: Any,
    num_classes: int | None = None,
    client: Any = None,
    batch_size: int | None = None,
    retries: int = 2,
) -> np.ndarray:
    """``model.predict`` over ``dataset`` (``num_classes`` default: the compiled ones); see
    :func:`forward`."""
    return _map_model("predict", model, dataset, client, batch_size, retries, {"num_classes": num_classes})


def grid_points(grid: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The points of a grid: a dict of lists gives their cartesian product (the last key varies
    fastest, like ``itertools.product``); a list of dicts is taken as it is."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        for key in keys:
            if isinstance(grid[key], (str, bytes)) or not isinstance(grid[key], Iterable):
                raise TypeError(f"grid[{key!r}] must be a list of values, got {grid[key]!r}")
        return [dict(zip(keys, values)) for values in itertools.product(*(list(grid[k]) for k in keys))]
    points = [dict(point) for point in grid]
    return points


def _call_point(function: Callable[..., Any], params: dict[str, Any], shared: dict[str, Any]) -> Any:
    return function(**shared, **params)


def sweep(
    build_and_fit: Callable[..., Any],
    grid: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]],
    client: Any = None,
    seed: int = 0,
    shared: Mapping[str, Any] | None = None,
    retries: int = 2,
) -> list[tuple[dict[str, Any], Any]]:
    """Runs ``build_and_fit(**shared, **params, seed=seed)`` for every point of ``grid`` in
    parallel, one task per point.

    Parameters
    ----------
    build_and_fit : callable
        Takes the grid's parameters (and ``shared``, and ``seed``) as keyword arguments and
        returns a picklable result (an accuracy, a dict, a model's ``to_buffer()`` bytes...).
    grid : dict of lists, or list of dicts
        See :func:`grid_points`.
    client : distributed.Client, optional
        Default: the current client; none: this process, one point after the other.
    seed : int
        Given to every point, so all points compile alike and the results depend only on the
        parameters (a deterministic sweep). To sweep seeds too, put ``"seed"`` in the grid: a
        point's own seed wins.
    shared : dict, optional
        Large read-only keyword arguments (training data...) sent once to every worker
        (``client.scatter(broadcast=True)``) rather than once per task.
    retries : int
        How many times a task is retried when it fails or its worker dies.

    Returns
    -------
    list of (params, result)
        In grid order, whatever order the tasks finished in.
    """
    points = grid_points(grid)
    calls = [dict({"seed": seed}, **point) for point in points]
    shared = dict(shared or {})
    client = _client(client)
    if client is None:
        results = [_call_point(build_and_fit, call, shared) for call in calls]
    else:
        shared_futures = {name: _broadcast(client, value) for name, value in shared.items()}
        futures = [
            client.submit(_call_point_remote, build_and_fit, call, list(shared_futures), *shared_futures.values(),
                          pure=False, retries=retries)
            for call in calls
        ]
        results = client.gather(futures)
    return list(zip(points, results))


def _call_point_remote(function: Callable[..., Any], params: dict[str, Any], names: list[str], *values: Any) -> Any:
    # The shared values come as positional arguments so that Dask resolves their futures.
    return function(**{name: _aligned(value) for name, value in zip(names, values)}, **params)
