"""The deep flow on scikit-learn's digits: a Keras CNN trained with backpropagation becomes an Akida
feature extractor with binary outputs, and an Akida layer learns the classes on top of it, online,
without backpropagation.

1. Train a float Keras CNN (Conv-BN-ReLU-Pool x 2 -> Dense) on the training images.
2. Quantize it to 8/4/1 bits (8-bit input weights, 4-bit weights, 1-bit activations) with
   ``akida.cnn2snn.quantize`` and fine-tune it a few epochs with quantization in the loop.
3. Convert it with ``akida.cnn2snn.convert``; the Akida model reproduces the quantized Keras model.
4. Pop the Dense classifier: the model now outputs 2x2x32 binary spikes per image. Add an
   ``akida.FullyConnected`` layer of 1-bit weights, ``compile`` it for learning and ``fit`` it on
   the training images with their labels (one pass).
5. Few-shot: the same learning layer trained on 1, 5 or 10 images per class.
6. ``add_classes``: learn classes 0-7 first, then add 8 and 9 from 5 images each; compared with
   learning all ten classes at once from the same images.

Learning settings (neurons per class; ``num_weights`` = 1.2 x the median number of feature
spikes) were chosen on a validation split of the training images, never on the test images.

    python examples/cnn2snn_deep_flow.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benches"))

import cnn2snn_models as cm  # noqa: E402  (selects the Keras JAX backend before Keras loads)
import numpy as np  # noqa: E402

import akida  # noqa: E402
from akida import cnn2snn  # noqa: E402

BITS = (8, 4, 1)
# Learning-layer settings, each the best on a validation split of the training images (a
# stratified 20 %, the model trained on the other 80 %), num_weights = 1.2 x median spikes:
#: with all the training images: 1 / 5 / 10 / 20 neurons per class gave 94.4 / 95.6 / 94.8 /
#: 96.0 % (so within noise: 252 validation images);
NEURONS_PER_CLASS = 20
#: few-shot: 1 neuron per class beat 5, 10 and 20 at 1, 5 and 10 shots (mean of 10 draws; 1 shot:
#: 70.0 / 64.8 / 66.0 / 57.9 %);
FEW_SHOT_NEURONS_PER_CLASS = 1
FEW_SHOT_DRAWS = 10
#: add_classes: (1, 5, 10, 20 neurons per class) x (5, 10 images of each new class), best accuracy
#: over the ten classes: 1 neuron per class, 5 images (92.5 %; the others 87.7-92.1 %).
ADD_CLASSES_NEURONS_PER_CLASS = 1
NEW_CLASS_SHOTS = 5


def with_learning_layer(features_buffer: bytes, per_class: int, num_classes: int, num_weights: int,
                        seed: int = 0) -> akida.Model:
    """A copy of the converted feature extractor with a fresh, compiled learning layer."""
    model = akida.Model(serialized_buffer=features_buffer)
    model.add(akida.FullyConnected(num_neurons=per_class * num_classes, weights_bits=1,
                                   activations_enabled=False, name="learned"))
    model.compile(num_weights=num_weights, num_classes=num_classes, seed=seed)
    return model


def first_per_class(labels: np.ndarray, shots: int, classes=range(10)) -> np.ndarray:
    """The first ``shots`` training images of each class, in training order."""
    return np.concatenate([np.flatnonzero(labels == d)[:shots] for d in classes])


def main() -> None:
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = cm.load_digits_split()
    u_train, u_test = x_train.astype(np.uint8), x_test.astype(np.uint8)  # Akida inputs: 0..16
    print(f"scikit-learn digits: {len(x_train)} training / {len(x_test)} test images")

    # 1-2. Float CNN, then 8/4/1 quantization and quantization-aware fine-tuning.
    float_model = cm.train_float(cm.digits_cnn(), x_train, y_train, cm.DIGITS)
    float_acc = cm.accuracy(cm.keras_outputs(float_model, x_test), y_test)
    qmodel = cm.quantize_and_fine_tune(float_model, BITS, x_train, y_train, cm.DIGITS)
    keras_out = cm.keras_outputs(qmodel, x_test)
    quant_acc = cm.accuracy(keras_out, y_test)
    trained = time.perf_counter() - start
    print(f"float Keras CNN: {float_acc:.2%}; quantized {'/'.join(map(str, BITS))} + QAT: {quant_acc:.2%} "
          f"({trained:.1f} s)")

    # 3. Conversion.
    akida_model = cnn2snn.convert(qmodel)
    akida_out = cm.akida_outputs(akida_model, u_test)
    akida_acc = cm.accuracy(akida_out, y_test)
    agree = float(np.mean(np.argmax(akida_out, 1) == np.argmax(keras_out, 1)))
    print(f"converted Akida model (its Dense classifier): {akida_acc:.2%}; same argmax as Keras on {agree:.1%}")
    akida_model.summary()

    # 4. Binary features and an Akida learning layer on them.
    akida_model.pop_layer()
    features = akida_model.forward(u_train)
    spikes = features.reshape(len(features), -1).sum(axis=1)
    num_weights = int(round(1.2 * np.median(spikes)))
    print(f"\nfeatures: {features.shape[1:]} binary spikes per image (values {np.unique(features).tolist()}); "
          f"median {np.median(spikes):.0f} spikes -> num_weights = {num_weights}")
    features_buffer = akida_model.to_buffer()
    learner = with_learning_layer(features_buffer, NEURONS_PER_CLASS, 10, num_weights)
    fit_start = time.perf_counter()
    learner.fit(u_train, y_train)
    fit_s = time.perf_counter() - fit_start
    learned_acc = float(np.mean(learner.predict(u_test) == y_test))
    learner.summary()
    print(f"Akida-learned classifier ({NEURONS_PER_CLASS} neurons per class, one pass, "
          f"{len(u_train) / fit_s:,.0f} samples/s): {learned_acc:.2%} on the test set")

    # 5. Few-shot.
    rng = np.random.default_rng(0)
    few_shot = {}
    for shots in (1, 5, 10):
        chosen = first_per_class(y_train, shots)
        model = with_learning_layer(features_buffer, FEW_SHOT_NEURONS_PER_CLASS, 10, num_weights)
        model.fit(u_train[chosen], y_train[chosen])
        first = float(np.mean(model.predict(u_test) == y_test))
        draws = []
        for draw in range(FEW_SHOT_DRAWS):
            chosen = np.concatenate([rng.choice(np.flatnonzero(y_train == d), shots, replace=False) for d in range(10)])
            model = with_learning_layer(features_buffer, FEW_SHOT_NEURONS_PER_CLASS, 10, num_weights, seed=draw)
            model.fit(u_train[chosen], y_train[chosen])
            draws.append(float(np.mean(model.predict(u_test) == y_test)))
        few_shot[shots] = (first, draws)

    # 6. add_classes: classes 0-7 from all their training images, then 8 and 9 from a few each.
    old_train = np.flatnonzero(y_train < 8)
    new_train = first_per_class(y_train, NEW_CLASS_SHOTS, classes=(8, 9))
    old_test, new_test = y_test < 8, y_test >= 8
    model = with_learning_layer(features_buffer, ADD_CLASSES_NEURONS_PER_CLASS, 8, num_weights)
    model.fit(u_train[old_train], y_train[old_train])
    old_before = float(np.mean(model.predict(u_test[old_test]) == y_test[old_test]))
    model.add_classes(2)
    model.fit(u_train[new_train], y_train[new_train])
    predicted = model.predict(u_test)
    added = [float(np.mean(predicted[m] == y_test[m])) for m in (old_test, new_test)] + [float(np.mean(predicted == y_test))]
    # The reference: the same images, all ten classes compiled and learned at once.
    joint = with_learning_layer(features_buffer, ADD_CLASSES_NEURONS_PER_CLASS, 10, num_weights)
    joint.fit(u_train[np.concatenate([old_train, new_train])], y_train[np.concatenate([old_train, new_train])])
    predicted = joint.predict(u_test)
    together = [float(np.mean(predicted[m] == y_test[m])) for m in (old_test, new_test)] + [float(np.mean(predicted == y_test))]
    elapsed = time.perf_counter() - start

    print("\nSummary (test set, scikit-learn digits)")
    print(f"  float Keras CNN                                   {float_acc:7.2%}")
    print(f"  quantized 8/4/1 + QAT, Keras                      {quant_acc:7.2%}")
    print(f"  converted Akida model                             {akida_acc:7.2%}  (argmax agreement {agree:.1%})")
    print(f"  Akida-learned classifier on the binary features   {learned_acc:7.2%}  "
          f"({NEURONS_PER_CLASS}/class, {num_weights} weights)")
    print(f"  few-shot ({FEW_SHOT_NEURONS_PER_CLASS} neuron per class), first N per class / mean of "
          f"{FEW_SHOT_DRAWS} random draws (min..max):")
    for shots, (first, draws) in few_shot.items():
        print(f"    {shots:>2} per class                                    {first:7.2%}  /  {np.mean(draws):.2%} "
              f"({min(draws):.1%}..{max(draws):.1%})")
    print(f"  add_classes ({ADD_CLASSES_NEURONS_PER_CLASS} neuron per class): classes 0-7 learned from "
          f"{len(old_train)} images, then 8 and 9 from {NEW_CLASS_SHOTS} images each")
    print("  (in brackets: all ten classes compiled and learned at once from the same images)")
    print(f"    old classes 0-7, before adding 8 and 9          {old_before:7.2%}")
    for label, value, reference in zip(("old classes 0-7", "new classes 8-9", "all ten classes"), added, together):
        print(f"    {label:<48}{value:7.2%}  ({reference:.2%})")
    print(f"total {elapsed:.1f} s")


if __name__ == "__main__":
    main()
