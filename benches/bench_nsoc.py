"""NSoC mapper and emulator benchmark.

1. Published architectures built with this engine's layers, mapped onto the virtual AKD1000 in
   both modes: NPs, sequences and passes next to the published NP counts, and the cost model's
   estimated frames/s (estimates of the cost model fitted to public figures) from an emulated
   forward on random inputs.
2. The cost of emulating: the emulated forward of the MNIST- and CIFAR-shaped networks of
   bench_forward.py against their software forward (outputs asserted equal first), each the best
   of ``--runs`` calls of ``--samples`` samples (the first mapped call prepares the emulator, which
   the model keeps for later calls: it is run once before timing, like the software warm-up).

Run: .venv/bin/python benches/bench_nsoc.py [--samples N] [--runs R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import akida

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_forward as bf  # noqa: E402

PUBLISHED = {
    ("AkidaNet 0.5 / 224", "AllNps"): 68,
    ("DS-CNN keyword spotting", "AllNps"): 65,
    ("DS-CNN keyword spotting", "Minimal"): 5,
}


def randomize(model: akida.Model, rng: np.random.Generator, firing: float = 0.15) -> None:
    """Random weights; thresholds from the weights so that a share of the neurons fire (rough)."""
    for layer in model.layers:
        names = layer.get_variable_names()
        for name in ("weights", "weights_pw"):
            if name in names:
                bits = layer.parameters.weights_bits
                high = 1 if bits == 1 else 2 ** (bits - 1) - 1
                low = 0 if bits == 1 else -high
                layer.set_variable(name, rng.integers(low, high + 1, layer.get_variable(name).shape))
        if "threshold_fire" in names and layer.parameters.activations_enabled:
            w = layer.get_variable("weights_pw" if "weights_pw" in names else "weights").astype(np.int64)
            spread = np.sqrt((w.reshape(-1, w.shape[-1]) ** 2).sum(axis=0)) + 1
            layer.set_variable("threshold_fire", (spread * (1.0 - firing) * 2).astype(np.int32))


def akidanet_half(akida=akida) -> akida.Model:
    m = akida.Model()
    m.add(akida.InputConvolutional(input_width=224, input_height=224, input_channels=3, kernel_width=3,
                                   kernel_height=3, num_neurons=16, stride_x=2, stride_y=2, weights_bits=8,
                                   threshold_fire_bits=4, name="conv_0"))
    for name, n, s in (("conv_1", 32, 1), ("conv_2", 64, 2), ("conv_3", 64, 1)):
        m.add(akida.Convolutional(3, 3, n, name=name, stride_x=s, stride_y=s, weights_bits=4, threshold_fire_bits=4))
    plan = [(128, True), (128, False), (256, True)] + [(256, False)] * 5 + [(512, True)]
    for i, (n, pool) in enumerate(plan, start=4):
        kw = dict(pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2) if pool else {}
        m.add(akida.SeparableConvolutional(3, 3, n, name=f"separable_{i}", weights_bits=4, threshold_fire_bits=4, **kw))
    m.add(akida.SeparableConvolutional(3, 3, 512, name="separable_13", weights_bits=4, threshold_fire_bits=4,
                                       pooling_type=akida.PoolingType.Average))
    m.add(akida.FullyConnected(1000, name="classifier", weights_bits=4, activations_enabled=False))
    return m


def ds_cnn() -> akida.Model:
    m = akida.Model()
    m.add(akida.InputConvolutional(input_width=10, input_height=49, input_channels=1, kernel_width=5,
                                   kernel_height=5, num_neurons=64, stride_x=2, stride_y=2, weights_bits=8,
                                   threshold_fire_bits=4, name="conv_0"))
    for i in range(1, 5):
        kw = dict(pooling_type=akida.PoolingType.Average) if i == 4 else {}
        m.add(akida.SeparableConvolutional(3, 3, 64, name=f"separable_{i}", weights_bits=4, threshold_fire_bits=4, **kw))
    m.add(akida.FullyConnected(33, name="classifier", weights_bits=4, activations_enabled=False))
    return m


def seed_mnist() -> akida.Model:
    m = akida.Model()
    m.add(akida.InputData(input_width=28, input_height=28, input_channels=1, input_bits=1))
    m.add(akida.Convolutional(3, 3, 32, name="conv_1"))
    m.add(akida.Convolutional(3, 3, 64, name="conv_2", pooling_type=akida.PoolingType.Max, pooling_width=2,
                              pooling_height=2))
    m.add(akida.FullyConnected(128, name="fc_1"))
    m.add(akida.FullyConnected(10, name="fc_2", activations_enabled=False))
    return m


def architectures(samples: int) -> None:
    rng = np.random.default_rng(0)
    print("Published architectures on the virtual AKD1000 (NP counts: this mapper vs published)")
    print(f"{'model':<26} {'mode':<8} {'NPs':>4} {'published':>9} {'diff':>6} {'seq':>4} {'passes':>6} "
          f"{'est. clocks':>11} {'est. fps':>9} {'est. mJ/frame':>13} {'est. W':>6}")
    for name, build in (("AkidaNet 0.5 / 224", akidanet_half), ("DS-CNN keyword spotting", ds_cnn),
                        ("seed MNIST net", seed_mnist)):
        model = build()
        randomize(model, rng)
        h, w, c = model.input_shape
        high = 2 if name == "seed MNIST net" else 256
        x = rng.integers(0, high, (max(samples, 8 if name.startswith("DS") else samples), h, w, c)).astype(np.uint8)
        for mode in (akida.MapMode.AllNps, akida.MapMode.Minimal):
            model.map(akida.AKD1000(), mode=mode)
            model.forward(x)
            stats = model.statistics
            nps = len({np.ident for layer in model.layers if layer.mapping for np in layer.mapping.nps})
            sequences = len(model.sequences)
            passes = sum(len(s.passes) for s in model.sequences)
            key = (name, "AllNps" if mode == akida.MapMode.AllNps else "Minimal")
            published = PUBLISHED.get(key)
            diff = f"{100 * (nps - published) / published:+.0f}%" if published else "-"
            est = stats["estimates"]
            print(f"{name:<26} {key[1]:<8} {nps:>4} {published or '-':>9} {diff:>6} {sequences:>4} {passes:>6} "
                  f"{est['cycles_per_frame']:>11,.0f} {est['frames_per_s']:>9.1f} {1e3 * est['energy_per_frame_j']:>13.3f}"
                  f" {est['power_w']:>6.2f}")
        model.unmap()
    print("(frames/s and energy: estimates of the cost model fitted to the public figures, on random weights and"
          " inputs; published: AkidaNet 0.5 ~4.3 M clocks/frame, 43-51 frames/s on the board, ~1 W, 19-23 mJ/frame;"
          " DS-CNN ~94,000 clocks/frame)")


def best_time(call, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t)
    return best


def emulation_cost(samples: int, runs: int) -> None:
    print("\nEmulated forward vs software forward (same outputs asserted first)")
    x_mnist, x_cal, _ = bf.load_mnist_like(samples, 200)
    rgb = bf.smooth_rgb_images(samples + 200, seed=3)
    for name, layers, x, cal in (("MNIST-shaped", bf.mnist_layers(), x_mnist, x_cal),
                                 ("CIFAR-shaped", bf.cifar_layers(), rgb[:samples], rgb[samples:])):
        bf.calibrate(layers, cal, "blas", bf.DEFAULT_FIRING / 100.0)
        model = bf.build_engine_model(akida, layers)
        model.forward(x[:8])
        expected = model.forward(x)
        software = best_time(lambda: model.forward(x), runs)
        model.map(akida.AKD1000())
        model.forward(x[:8])
        got = model.forward(x)
        emulated = best_time(lambda: model.forward(x), runs)
        assert np.array_equal(got, expected), f"{name}: emulated != software"
        placements = [layer.mapping.placement for layer in model.layers]
        print(f"{name:<14} software {samples / software:>9,.0f} samples/s, emulated {samples / emulated:>9,.0f} "
              f"samples/s, ratio {emulated / software:.2f}x (target <= 3x); placements {placements}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5, help="timed calls of each forward (the best is kept)")
    parser.add_argument("--frames", type=int, default=2, help="emulated frames per published architecture")
    args = parser.parse_args()
    architectures(args.frames)
    emulation_cost(args.samples, args.runs)


if __name__ == "__main__":
    main()
