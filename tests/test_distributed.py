"""akida.distributed on a local two-process Dask cluster: results equal the single-process calls
exactly, sweeps come back in grid order, and a worker dying mid-run changes nothing."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import akida

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
cloudpickle = pytest.importorskip("cloudpickle")

from akida import distributed as ad  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # The workers import nothing from tests/: ship this module's functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=50
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1234)
    model = akida.Model([akida.InputData(8, 8, 2, input_bits=1), akida.FullyConnected(60, activations_enabled=False)])
    model.compile(num_weights=20, num_classes=6, seed=5)
    x = (rng.random((700, 8, 8, 2)) < 0.3).astype(np.uint8)
    model.fit(x[:300], rng.integers(0, 6, 300))
    return model, x


@pytest.mark.parametrize("method", ["forward", "evaluate", "predict"])
def test_dask_array_equals_the_local_call(client, trained, method):
    model, x = trained
    got = getattr(ad, method)(model, da.from_array(x, chunks=(97, 8, 8, 2)), client=client)
    expected = getattr(model, method)(x)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_bag_list_and_numpy_inputs(client, trained):
    model, x = trained
    expected = model.predict(x, num_classes=3)
    bag = db.from_sequence(list(x), npartitions=6)
    np.testing.assert_array_equal(ad.predict(model, bag, num_classes=3, client=client), expected)
    batches = [x[:10], x[10:400], x[400:]]
    np.testing.assert_array_equal(ad.predict(model, batches, num_classes=3, client=client), expected)
    np.testing.assert_array_equal(ad.forward(model, x, batch_size=128, client=client), model.forward(x))
    # a dask array chunked along the pixels too is rechunked to whole samples
    odd = da.from_array(x, chunks=(200, 4, 8, 1))
    np.testing.assert_array_equal(ad.evaluate(model, odd, client=client), model.evaluate(x))


def test_the_model_is_sent_compressed_and_loaded_once_per_worker(client, trained):
    model, x = trained
    key, payload = ad.model_payload(model)
    assert len(payload) < len(model.to_buffer())  # .fbz
    assert akida.Model(serialized_buffer=payload).to_buffer() == model.to_buffer()
    ad.predict(model, da.from_array(x, chunks=50), client=client)

    def cached(dask_worker):
        return list(ad._cache)

    assert all(key in keys for keys in client.run(cached).values())


def test_engine_errors_come_back_with_their_class(client, trained):
    model, x = trained
    with pytest.raises(akida.InputError):
        ad.forward(model, [x[:5], np.zeros((5, 7, 8, 2), np.uint8)], client=client, retries=0)


def fit_point(per_class, num_weights, seed, x, y):
    model = akida.Model([akida.InputData(8, 8, 2, input_bits=1),
                         akida.FullyConnected(6 * per_class, activations_enabled=False)])
    model.compile(num_weights=num_weights, num_classes=6, seed=seed)
    model.fit(x[:300], y)
    return float(np.mean(model.predict(x[300:]) == model.predict(x[300:]))), model.to_buffer()


def test_sweep_in_grid_order_and_deterministic(client, trained):
    _, x = trained
    y = np.random.default_rng(7).integers(0, 6, 300)
    grid = {"per_class": [2, 5], "num_weights": [10, 30, 50]}
    results = ad.sweep(fit_point, grid, client=client, seed=3, shared={"x": x, "y": y})
    assert [p for p, _ in results] == [{"per_class": a, "num_weights": b} for a in (2, 5) for b in (10, 30, 50)]
    for params, (_, buffer) in results:
        assert buffer == fit_point(**params, seed=3, x=x, y=y)[1]
    points = [{"per_class": 3, "num_weights": 12, "seed": s} for s in (0, 1)]
    seeded = ad.sweep(fit_point, points, client=client, shared={"x": x, "y": y})
    assert [r[1] for _, r in seeded] == [fit_point(3, 12, s, x, y)[1] for s in (0, 1)]
    assert seeded[0][1][1] != seeded[1][1][1]


def test_grid_points():
    assert ad.grid_points({"a": [1, 2], "b": "xy" and ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert ad.grid_points([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]
    with pytest.raises(TypeError, match="list of values"):
        ad.grid_points({"a": 3})


def die_once(block, marker):
    """Kills the worker process computing it, the first time only (the marker file remembers)."""
    try:
        distributed.get_worker()
    except ValueError:
        return block
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return block
    os.close(fd)
    os._exit(1)


def test_a_worker_killed_mid_run_changes_nothing(client, trained, tmp_path):
    model, x = trained
    marker = str(tmp_path / "killed")
    dataset = da.from_array(x, chunks=(50, 8, 8, 2)).map_blocks(die_once, marker, dtype=np.uint8)
    got = ad.predict(model, dataset, client=client, retries=3)
    assert os.path.exists(marker)  # a worker did die
    np.testing.assert_array_equal(got, model.predict(x))
    client.wait_for_workers(2, timeout=30)


def test_missing_dask_names_the_extra(monkeypatch, trained):
    model, x = trained
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install openakida\[distributed\]"):
        ad.predict(model, x)


def test_bench_distributed_quick_runs():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benches" / "bench_distributed.py"
    result = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical results: yes" in result.stdout and "speedup:" in result.stdout
