"""The benchmark script runs once, small, as a test: it must finish and its exactness checks pass.
Timings are printed by the script, never asserted here."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benches" / "bench_forward.py"


def test_bench_forward_quick_runs_and_matches_numpy():
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--runs", "1"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mnist: engine output == numpy output exactly" in result.stdout
    assert "cifar: engine output == numpy output exactly" in result.stdout
    assert "peak RSS" in result.stdout


def test_bench_learning_quick_runs():
    script = BENCH.parent / "bench_learning.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--passes", "2"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plain (50, 200), 2 passes" in result.stdout
    assert "fit speed" in result.stdout


def test_learning_validation_runs_with_features():
    script = BENCH.parent / "learning_validation.py"
    result = subprocess.run(
        [sys.executable, str(script), "--folds", "1", "--seeds", "1", "--features", "--draws", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fold 0: (1, 300)" in result.stdout
    for shots in (1, 5, 10):
        assert f"few-shot {shots:>2} on features: first" in result.stdout
    assert "(400, 200), fold 0" in result.stdout


def test_bench_nsoc_runs_and_emulation_matches_software():
    script = BENCH.parent / "bench_nsoc.py"
    result = subprocess.run(
        [sys.executable, str(script), "--samples", "50", "--frames", "1", "--runs", "1"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DS-CNN keyword spotting" in result.stdout
    # the script asserts emulated == software outputs before it prints each ratio
    assert "MNIST-shaped   software" in result.stdout and "CIFAR-shaped   software" in result.stdout
