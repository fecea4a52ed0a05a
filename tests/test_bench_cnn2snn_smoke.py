"""The cnn2snn benchmark runs once, small (``--quick``: digits only, few epochs), as a test: it must
finish, every converted model must agree with its quantized Keras model and reload from .fbz with
identical outputs. Accuracies and timings are printed by the script, never asserted here."""

import json
import subprocess
import sys
from pathlib import Path


BENCH = Path(__file__).resolve().parent.parent / "benches" / "bench_cnn2snn.py"


# Keras is not imported here (it needs KERAS_BACKEND, and the benchmark process sets it); the dev
# set-up installs it, so a missing keras fails this test rather than skipping it.
def test_bench_cnn2snn_quick_runs_and_akida_matches_keras(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "saved .fbz models reload with identical outputs: True" in result.stdout
    rows = [r for r in json.loads(out.read_text())["rows"] if r["model"] != "float"]
    assert [r["model"] for r in rows] == ["8/4/4 PTQ", "8/4/2 QAT", "8/4/1 QAT"]
    for row in rows:
        assert row["agreement"] >= 0.995, row
        assert row["relative_error"] <= 1e-5, row
        assert row["reload_identical"], row
