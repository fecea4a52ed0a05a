"""Tiny cases whose expected outputs are worked out by hand in the comments.

These do not use the oracle: they pin the contract of docs/semantics.md on concrete numbers (and the
oracle is checked against the same numbers at the end of each test).
"""

import numpy as np
import pytest

from oracle import LayerSpec, OracleModel, build_akida_model

akida = pytest.importorskip("akida")

IMAGE_3x3 = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
KERNEL_2x2 = np.array([[1, 2], [3, 4]])  # KERNEL[t_y, t_x]


def run(specs, x):
    """Run on akida and on the oracle; both must agree (the caller then checks the hand values)."""
    x = np.asarray(x, dtype=np.uint8)
    model = build_akida_model(specs)
    got = model.forward(x)
    assert np.array_equal(OracleModel(specs).forward(x), got.astype(np.int64)), "oracle disagrees with engine"
    return got


def as_input(img, channels_last=True):
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    return a[None].astype(np.uint8)


def input_data(h, w, c=1, bits=4):
    return LayerSpec("InputData", dict(input_width=w, input_height=h, input_channels=c, input_bits=bits))


def input_conv(h, w, kh, kw, weights, c=1, n=1, **params):
    params = dict(dict(input_width=w, input_height=h, input_channels=c, kernel_width=kw, kernel_height=kh,
                       num_neurons=n, weights_bits=4, activations_enabled=False), **params)
    return LayerSpec("InputConvolutional", params, variables={"weights": np.asarray(weights, np.int8)})


# ----------------------------------------------------------------------------------------------
# Convolution vs cross-correlation
# ----------------------------------------------------------------------------------------------


def test_convolutional_flips_the_kernel():
    # image            kernel W[t_y, t_x]
    #  1 2 3            1 2
    #  4 5 6            3 4
    #  7 8 9
    # Valid, stride 1 -> 2x2 output. True convolution uses W[1 - t_y, 1 - t_x]:
    #  p[0,0] = 1*4 + 2*3 + 4*2 + 5*1 = 4 + 6 + 8 + 5   = 23
    #  p[0,1] = 2*4 + 3*3 + 5*2 + 6*1 = 8 + 9 + 10 + 6  = 33
    #  p[1,0] = 4*4 + 5*3 + 7*2 + 8*1 = 16 + 15 + 14 + 8 = 53
    #  p[1,1] = 5*4 + 6*3 + 8*2 + 9*1 = 20 + 18 + 16 + 9 = 63
    # (a cross-correlation would give 37 47 / 67 77 instead)
    specs = [
        input_data(3, 3),
        LayerSpec("Convolutional", dict(kernel_width=2, kernel_height=2, num_neurons=1, weights_bits=4,
                                        convolution_mode="Valid", activations_enabled=False),
                  variables={"weights": KERNEL_2x2.reshape(2, 2, 1, 1).astype(np.int8)}),
    ]
    got = run(specs, as_input(IMAGE_3x3))
    assert got.dtype == np.int32
    assert got.shape == (1, 2, 2, 1)
    assert got[0, :, :, 0].tolist() == [[23, 33], [53, 63]]


def test_input_convolutional_is_a_cross_correlation():
    # same image and kernel, InputConvolutional: p[o] = sum in[o + t] * W[t]
    #  p[0,0] = 1*1 + 2*2 + 4*3 + 5*4 = 1 + 4 + 12 + 20  = 37
    #  p[0,1] = 2*1 + 3*2 + 5*3 + 6*4 = 2 + 6 + 15 + 24  = 47
    #  p[1,0] = 4*1 + 5*2 + 7*3 + 8*4 = 4 + 10 + 21 + 32 = 67
    #  p[1,1] = 5*1 + 6*2 + 8*3 + 9*4 = 5 + 12 + 24 + 36 = 77
    specs = [input_conv(3, 3, 2, 2, KERNEL_2x2.reshape(2, 2, 1, 1), convolution_mode="Valid")]
    got = run(specs, as_input(IMAGE_3x3))
    assert got.dtype == np.int32
    assert got[0, :, :, 0].tolist() == [[37, 47], [67, 77]]


def test_separable_depthwise_is_a_true_convolution():
    # Input 1x3 with 2 channels: ch0 = [1, 2, 3], ch1 = [4, 5, 6]. Kernel 1x2, Valid -> 2 outputs.
    # Depthwise kernels W[0, t_x, c, 0]: ch0 = [1, -1], ch1 = [1, 0]; true convolution:
    #   d[o, c] = in[o, c] * W[1, c] + in[o + 1, c] * W[0, c]
    #   ch0: o=0: 1*(-1) + 2*1 = 1 ; o=1: 2*(-1) + 3*1 = 1
    #   ch1: o=0: 4*0 + 5*1 = 5    ; o=1: 5*0 + 6*1 = 6
    # Pointwise weights_pw[0,0,c,n]: n0 = [1, 1], n1 = [1, -1]
    #   n0: [1+5, 1+6] = [6, 7] ; n1: [1-5, 1-6] = [-4, -5]
    # (a cross-correlation depthwise step would give n0 = [3, 4])
    w = np.zeros((1, 2, 2, 1), np.int8)
    w[0, :, 0, 0] = [1, -1]
    w[0, :, 1, 0] = [1, 0]
    pw = np.array([[1, 1], [1, -1]], np.int8).reshape(1, 1, 2, 2)
    specs = [
        input_data(1, 3, c=2),
        LayerSpec("SeparableConvolutional", dict(kernel_width=2, kernel_height=1, num_neurons=2, weights_bits=2,
                                                 convolution_mode="Valid", activations_enabled=False),
                  variables={"weights": w, "weights_pw": pw}),
    ]
    x = np.array([[[1, 4], [2, 5], [3, 6]]], np.uint8)[None]  # (1, 1, 3, 2)
    got = run(specs, x)
    assert got.shape == (1, 1, 2, 2)
    assert got[0, 0].tolist() == [[6, -4], [7, -5]]


def test_fully_connected_by_hand():
    # input 2x2x1 = [[1, 2], [3, 4]]
    # n0 weights [[1, 0], [0, 1]]  -> 1 + 4 = 5
    # n1 weights [[-1, 1], [1, -1]] -> -1 + 2 + 3 - 4 = 0
    w = np.zeros((2, 2, 1, 2), np.int8)
    w[:, :, 0, 0] = [[1, 0], [0, 1]]
    w[:, :, 0, 1] = [[-1, 1], [1, -1]]
    specs = [input_data(2, 2),
             LayerSpec("FullyConnected", dict(num_neurons=2, weights_bits=2, activations_enabled=False),
                       variables={"weights": w})]
    got = run(specs, as_input([[1, 2], [3, 4]]))
    assert got.shape == (1, 1, 1, 2)
    assert got.dtype == np.int32
    assert got.ravel().tolist() == [5, 0]


# ----------------------------------------------------------------------------------------------
# Padding
# ----------------------------------------------------------------------------------------------


def test_same_padding_odd_total_goes_at_the_end():
    # 3x3 image, 2x2 kernel, Same, stride 1: out = 3, P = (3-1)*1 + 2 - 3 = 1 -> 0 before, 1 after.
    # Output o reads cells o and o+1; cell 3 is padding (padding_value = 10). Cross-correlation:
    #  p[0,2] = in[0,2]*1 + pad*2 + in[1,2]*3 + pad*4 = 3 + 20 + 18 + 40 = 81
    #  p[1,2] = in[1,2]*1 + pad*2 + in[2,2]*3 + pad*4 = 6 + 20 + 27 + 40 = 93
    #  p[2,0] = in[2,0]*1 + in[2,1]*2 + pad*3 + pad*4 = 7 + 16 + 30 + 40 = 93
    #  p[2,1] = in[2,1]*1 + in[2,2]*2 + pad*3 + pad*4 = 8 + 18 + 30 + 40 = 96
    #  p[2,2] = in[2,2]*1 + pad*(2 + 3 + 4)           = 9 + 90            = 99
    # and the top-left 2x2 block equals the Valid result 37 47 / 67 77.
    specs = [input_conv(3, 3, 2, 2, KERNEL_2x2.reshape(2, 2, 1, 1), convolution_mode="Same", padding_value=10)]
    got = run(specs, as_input(IMAGE_3x3))
    assert got[0, :, :, 0].tolist() == [[37, 47, 81], [67, 77, 93], [93, 96, 99]]


@pytest.mark.parametrize("tap, expected", [(0, [0, 1, 2, 3, 4]), (3, [3, 4, 5, 0, 0])])
def test_same_padding_three_cells_one_before_two_after(tap, expected):
    # Row [1 2 3 4 5], kernel width 4, Same: out = 5, P = 4 + 4 - 5 = 3 -> 1 before, 2 after.
    # Output o reads cells o - 1 .. o + 2 (cross-correlation, padding 0).
    # A kernel with a single 1 at tap 0 gives in[o - 1] = [pad, 1, 2, 3, 4];
    # a single 1 at tap 3 gives in[o + 2] = [3, 4, 5, pad, pad].
    w = np.zeros((1, 4, 1, 1), np.int8)
    w[0, tap, 0, 0] = 1
    specs = [input_conv(1, 5, 1, 4, w, convolution_mode="Same", weights_bits=1)]
    got = run(specs, as_input([[1, 2, 3, 4, 5]]))
    assert got.ravel().tolist() == expected


def test_same_padding_stride_two():
    # Row [1 2 3 4 5 6], kernel 3 of ones, stride 2, Same: out = 3, P = 2*2 + 3 - 6 = 1 -> 0 before, 1 after.
    # o=0 reads 0..2: 1+2+3 = 6 ; o=1 reads 2..4: 3+4+5 = 12 ; o=2 reads 4..6: 5+6+pad(0) = 11
    specs = [input_conv(1, 6, 1, 3, np.ones((1, 3, 1, 1)), convolution_mode="Same", stride_x=2, weights_bits=1)]
    got = run(specs, as_input([[1, 2, 3, 4, 5, 6]]))
    assert got.ravel().tolist() == [6, 12, 11]


def test_full_mode_input_conv_and_conv():
    # Row [1 2 3], kernel [1 2], Full: out = 3 + 2 - 1 = 4, one padded cell before and after.
    # InputConvolutional (cross-correlation) p[o] = in[o-1]*1 + in[o]*2 = [2, 5, 8, 3]
    specs = [input_conv(1, 3, 1, 2, np.array([1, 2]).reshape(1, 2, 1, 1), convolution_mode="Full")]
    assert run(specs, as_input([[1, 2, 3]])).ravel().tolist() == [2, 5, 8, 3]
    # Convolutional (true convolution) p[o] = in[o-1]*2 + in[o]*1 = [1, 4, 7, 6] == np.convolve
    specs = [input_data(1, 3),
             LayerSpec("Convolutional", dict(kernel_width=2, kernel_height=1, num_neurons=1, weights_bits=4,
                                             convolution_mode="Full", activations_enabled=False),
                       variables={"weights": np.array([1, 2], np.int8).reshape(1, 2, 1, 1)})]
    assert run(specs, as_input([[1, 2, 3]])).ravel().tolist() == [1, 4, 7, 6]


def test_valid_stride_skips_the_tail():
    # Row [1 2 3 4 5], kernel [1 1], stride 2, Valid: out = floor(3/2) + 1 = 2 -> [1+2, 3+4]; cell 5 unused.
    specs = [input_conv(1, 5, 1, 2, np.ones((1, 2, 1, 1)), convolution_mode="Valid", stride_x=2, weights_bits=1)]
    assert run(specs, as_input([[1, 2, 3, 4, 5]])).ravel().tolist() == [3, 7]


# ----------------------------------------------------------------------------------------------
# Pooling (1x1 identity kernel, so potentials are the input)
# ----------------------------------------------------------------------------------------------

IMAGE_4x4 = np.arange(1, 17).reshape(4, 4)
#  1  2  3  4
#  5  6  7  8
#  9 10 11 12
# 13 14 15 16


@pytest.mark.parametrize(
    "weight, pooling, expected",
    [
        # Windows that fit the map exactly: the same in every mode.
        (1, dict(pooling_type="Max", pooling_width=2, pooling_height=2), [[6, 8], [14, 16]]),
        # (1+2+5+6)/4 = 3.5 -> 3 ; 22/4 -> 5 ; 46/4 -> 11 ; 54/4 -> 13
        (1, dict(pooling_type="Average", pooling_width=2, pooling_height=2), [[3, 5], [11, 13]]),
        # negative potentials: floor(-3.5) = -4, floor(-5.5) = -6, -11.5 -> -12, -13.5 -> -14
        (-1, dict(pooling_type="Average", pooling_width=2, pooling_height=2), [[-4, -6], [-12, -14]]),
        (-1, dict(pooling_type="Max", pooling_width=2, pooling_height=2), [[-1, -3], [-9, -11]]),
        # global: 136 / 16 = 8.5 -> 8 ; max 16
        (1, dict(pooling_type="Average", pooling_width=-1, pooling_height=-1), [[8]]),
        (1, dict(pooling_type="Max", pooling_width=-1, pooling_height=-1), [[16]]),
        (-1, dict(pooling_type="Average", pooling_width=-1, pooling_height=-1), [[-9]]),
        # global with a stride: still one window
        (1, dict(pooling_type="Max", pooling_width=-1, pooling_height=-1, pooling_stride_x=1, pooling_stride_y=1),
         [[16]]),
        # Valid mode: windows stay inside the map, floor((n - w) / s) + 1 of them.
        # 3x3 window, default stride 3: floor((4-3)/3) + 1 = 1 window over rows/cols 0..2
        (1, dict(convolution_mode="Valid", pooling_type="Max", pooling_width=3, pooling_height=3), [[11]]),
        # sum of the 3x3 block = 54, /9 = 6
        (1, dict(convolution_mode="Valid", pooling_type="Average", pooling_width=3, pooling_height=3), [[6]]),
        # 3x3 window, stride 1 -> 2x2
        (1, dict(convolution_mode="Valid", pooling_type="Max", pooling_width=3, pooling_height=3,
                 pooling_stride_x=1, pooling_stride_y=1), [[11, 12], [15, 16]]),
        # 2x1 window (height 1, width 2), stride x 1, stride y 3: rows 0 and 3
        (1, dict(convolution_mode="Valid", pooling_type="Max", pooling_width=2, pooling_height=1,
                 pooling_stride_x=1, pooling_stride_y=3), [[2, 3, 4], [14, 15, 16]]),
        # Same mode: ceil(n / s) windows, total padding P = (out-1)*s + w - n, P // 2 before; padded
        # cells are ignored.
        # 3x3 window, stride 3: out = 2, P = 3 + 3 - 4 = 2 (one row/column before, one after), so
        # each window holds a 2x2 block of the map: like the 2x2 pooling above
        (1, dict(pooling_type="Max", pooling_width=3, pooling_height=3), [[6, 8], [14, 16]]),
        (1, dict(pooling_type="Average", pooling_width=3, pooling_height=3), [[3, 5], [11, 13]]),
        # 3x3 window, stride 1: out = 4, P = 3 + 3 - 4 = 2, one before: the max of each cell's
        # neighbourhood, clipped at the edges
        (1, dict(pooling_type="Max", pooling_width=3, pooling_height=3, pooling_stride_x=1, pooling_stride_y=1),
         [[6, 7, 8, 8], [10, 11, 12, 12], [14, 15, 16, 16], [14, 15, 16, 16]]),
        # 2x1 window, stride x 1, stride y 3: rows: out = 2, P = 0 -> rows 0 and 3; columns: out = 4,
        # P = 3 + 2 - 4 = 1, after: windows (0 1) (1 2) (2 3) (3 pad)
        (1, dict(pooling_type="Max", pooling_width=2, pooling_height=1, pooling_stride_x=1, pooling_stride_y=3),
         [[2, 3, 4, 4], [14, 15, 16, 16]]),
        # 3x3 window, stride 2: out = 2, P = 2 + 3 - 4 = 1, after. Windows: rows/cols 0..2 and 2..3.
        # (1+2+3+5+6+7+9+10+11)/9 = 54/9 = 6 ; (3+4+7+8+11+12)/6 = 7.5 -> 7 ;
        # (9+10+11+13+14+15)/6 = 12 ; (11+12+15+16)/4 = 13.5 -> 13: divided by the valid cells
        (1, dict(pooling_type="Average", pooling_width=3, pooling_height=3, pooling_stride_x=2, pooling_stride_y=2),
         [[6, 7], [12, 13]]),
        # negative: -6 ; floor(-7.5) = -8 ; -12 ; floor(-13.5) = -14
        (-1, dict(pooling_type="Average", pooling_width=3, pooling_height=3, pooling_stride_x=2, pooling_stride_y=2),
         [[-6, -8], [-12, -14]]),
        # Max ignores the padded cells too (a padding of 0 would win): -1 ; -3 ; -9 ; -11
        (-1, dict(pooling_type="Max", pooling_width=3, pooling_height=3, pooling_stride_x=2, pooling_stride_y=2),
         [[-1, -3], [-9, -11]]),
        # a window larger than the map: 5x5, stride 5: out = 1, P = 5 - 4 = 1, after: the whole map
        (1, dict(pooling_type="Average", pooling_width=5, pooling_height=5), [[8]]),
        (-1, dict(pooling_type="Max", pooling_width=5, pooling_height=5), [[-1]]),
    ],
)
def test_pooling_by_hand(weight, pooling, expected):
    specs = [input_conv(4, 4, 1, 1, np.full((1, 1, 1, 1), weight), weights_bits=2, **pooling)]
    got = run(specs, as_input(IMAGE_4x4))
    assert got[0, :, :, 0].tolist() == expected


def test_same_pooling_of_an_odd_row_by_hand():
    # Row [1 2 3 4 5], Max and Average window 2, stride 2, Same: out = 3, P = 2*2 + 2 - 5 = 1, after:
    # windows (1 2) (3 4) (5 pad) -> Max [2, 4, 5], Average [1, 3, 5] (the last one divides by 1).
    # Window 4, stride 1: out = 5, P = 4 + 4 - 5 = 3: one before, two after:
    # windows (pad 1 2 3) (1 2 3 4) (2 3 4 5) (3 4 5 pad) (4 5 pad pad) -> Average 6/3, 10/4, 14/4, 12/3, 9/2.
    row = as_input([[1, 2, 3, 4, 5]])
    for kind, window, stride, expected in [
        ("Max", 2, -1, [2, 4, 5]),
        ("Average", 2, -1, [1, 3, 5]),
        ("Average", 4, 1, [2, 2, 3, 4, 4]),
        ("Max", 4, 1, [3, 4, 5, 5, 5]),
    ]:
        specs = [input_conv(1, 5, 1, 1, np.ones((1, 1, 1, 1)), pooling_type=kind, pooling_width=window,
                            pooling_height=1, pooling_stride_x=stride)]
        assert run(specs, row).ravel().tolist() == expected, (kind, window, stride)
        assert build_akida_model(specs).output_shape == (1, len(expected), 1)


def test_pooling_happens_before_activation():
    # Potentials = input (identity kernel); Average 2x2 pooling gives [[3, 5], [11, 13]]; then a 4-bit
    # activation with T = 0, step 4: ceil(p / 4) = [[1, 2], [3, 4]].
    # (Activating first and averaging after would give [[1, 1], [3, 3]]: e.g. the second window
    # 3 4 7 8 -> 1 1 2 2 -> floor(6 / 4) = 1.)
    specs = [input_conv(4, 4, 1, 1, np.ones((1, 1, 1, 1)), weights_bits=1, pooling_type="Average",
                        pooling_width=2, pooling_height=2, activations_enabled=True, threshold_fire=0,
                        threshold_fire_step=4.0, threshold_fire_bits=4)]
    got = run(specs, as_input(IMAGE_4x4))
    assert got.dtype == np.uint8
    assert got[0, :, :, 0].tolist() == [[1, 2], [3, 4]]


# ----------------------------------------------------------------------------------------------
# Activation boundaries: FullyConnected over a 1x1x1 input with weight 1, so p equals the input
# ----------------------------------------------------------------------------------------------


def _identity_fc(threshold, step, bits, weight=1):
    return [
        input_data(1, 1, bits=8),
        LayerSpec("FullyConnected", dict(num_neurons=1, weights_bits=2, threshold_fire=threshold,
                                         threshold_fire_step=step, threshold_fire_bits=bits),
                  variables={"weights": np.full((1, 1, 1, 1), weight, np.int8)}),
    ]


def _responses(specs, potentials):
    x = np.array(potentials, np.uint8).reshape(-1, 1, 1, 1)
    got = run(specs, x)
    assert got.dtype == np.uint8
    return got.ravel().tolist()


def test_activation_4_bits_integer_step():
    # T = 10, L = step = 2:
    #  p = 10 (p == T)       -> 0
    #  p = 11                -> ceil(1/2) = 1
    #  p = 12 (p == T + L)   -> 1   (T + 0L < p <= T + 1L)
    #  p = 13                -> 2
    #  p = 40 (p == T + 15L) -> 15
    #  p = 41                -> ceil(31/2) = 16 -> saturates at 15
    #  p = 255               -> 15
    #  p = 0                 -> 0
    specs = _identity_fc(10, 2.0, 4)
    assert _responses(specs, [10, 11, 12, 13, 40, 41, 255, 0]) == [0, 1, 1, 2, 15, 15, 15, 0]


def test_activation_4_bits_fractional_step():
    # T = 10, L = 2.5: p = 12 -> ceil(0.8) = 1 ; 13 -> ceil(1.2) = 2 ; 15 (= T + 2L) -> 2 ; 16 -> 3
    #  p = 47 -> ceil(37 / 2.5 = 14.8) = 15 ; p = 48 -> ceil(15.2) = 16 -> 15
    specs = _identity_fc(10, 2.5, 4)
    assert _responses(specs, [12, 13, 15, 16, 47, 48]) == [1, 2, 2, 3, 15, 15]


def test_activation_2_bits_uses_four_steps():
    # T = 10, bits 2, step 2.5 -> L = 4 * 2.5 = 10:
    #  p = 20 (T + L) -> 1 ; 21 -> 2 ; 30 (T + 2L) -> 2 ; 31 -> 3 ; 40 -> 3 ; 200 -> 3 (max 2**2 - 1)
    specs = _identity_fc(10, 2.5, 2)
    assert _responses(specs, [10, 11, 20, 21, 30, 31, 40, 200]) == [0, 1, 1, 2, 2, 3, 3, 3]


def test_activation_1_bit_ignores_step():
    # bits 1: 1 whenever p > T, whatever the step
    specs = _identity_fc(10, 0.001, 1)
    assert _responses(specs, [0, 9, 10, 11, 255]) == [0, 0, 0, 1, 1]


def test_activation_negative_threshold_fires_on_zero():
    # T = -3, step 1, bits 4: p = 0 -> ceil(3/1) = 3 ; p = 1 -> 4 ; p = 12 -> 15 ; p = 13 -> 15
    specs = _identity_fc(-3, 1.0, 4)
    assert _responses(specs, [0, 1, 12, 13]) == [3, 4, 15, 15]
    # negative potentials (weight -1): T = -3, p = -3 -> 0 ; p = -2 -> 1 ; p = -4 -> 0
    specs = _identity_fc(-3, 1.0, 4, weight=-1)
    assert _responses(specs, [3, 2, 4, 0]) == [0, 1, 0, 3]


def test_activation_uses_the_float32_step():
    # step 0.7 is stored as float32 0.699999988079071... < 0.7. T = 0, bits 4:
    #  p = 7: 7 / 0.69999998... = 10.0000002 -> ceil = 11 (with the real number 0.7 it would be 10)
    #  p = 6: 6 / 0.69999998 = 8.57 -> 9
    # step 0.3 is float32 0.300000011920929 > 0.3:
    #  p = 3: 3 / 0.30000001 = 9.9999996 -> 10
    assert _responses(_identity_fc(0, 0.7, 4), [7, 6]) == [11, 9]
    assert _responses(_identity_fc(0, 0.3, 4), [3, 1]) == [10, 4]


# ----------------------------------------------------------------------------------------------
# Concat and predict
# ----------------------------------------------------------------------------------------------


def test_concat_by_hand():
    # input 1x1x2 = (2, 3)
    # fc_a: weights (1, 1), 4 bits, T = 0, step 1 -> a = 5
    # fc_b: weights (1, 0), 4 bits, T = 0, step 1 -> b = 2
    # Concat([fc_b, fc_a]) -> channels (b, a) = (2, 5); its own activation T = 1, 4 bits, step 1 -> (1, 4)
    specs = [
        input_data(1, 1, c=2),
        LayerSpec("FullyConnected", dict(num_neurons=1, threshold_fire_bits=4), name="fc_a",
                  variables={"weights": np.array([1, 1], np.int8).reshape(1, 1, 2, 1)}),
        LayerSpec("FullyConnected", dict(num_neurons=1, threshold_fire_bits=4), name="fc_b",
                  inbound=["input_data"],
                  variables={"weights": np.array([1, 0], np.int8).reshape(1, 1, 2, 1)}),
        LayerSpec("Concat", dict(threshold_fire=1, threshold_fire_bits=4), inbound=["fc_b", "fc_a"]),
    ]
    got = run(specs, np.array([2, 3], np.uint8).reshape(1, 1, 1, 2))
    assert got.dtype == np.uint8
    assert got.ravel().tolist() == [1, 4]
    # with its activation disabled, Concat outputs its "potentials", i.e. its input values; the
    # Outputs section of semantics.md lists Concat among the uint8 emitters.
    specs[3].params["activations_enabled"] = False
    got = run(specs, np.array([2, 3], np.uint8).reshape(1, 1, 1, 2))
    assert got.dtype == np.uint8
    assert got.ravel().tolist() == [2, 5]


def test_predict_by_hand():
    # FC with 4 neurons, identity weights over a 1x1x4 input, 4-bit activation T = 0 step 1:
    # outputs equal the inputs (below 16).
    w = np.eye(4, dtype=np.int8).reshape(1, 1, 4, 4)
    specs = [input_data(1, 1, c=4),
             LayerSpec("FullyConnected", dict(num_neurons=4, threshold_fire_bits=4), variables={"weights": w})]
    model = build_akida_model(specs)
    x = np.array([[1, 5, 2, 0],   # best neuron 1 -> class 1 ; grouped by 2: class 0
                  [3, 0, 0, 3],   # tie 0 and 3 -> lowest index 0 -> class 0 ; grouped: class 0
                  [0, 0, 0, 0],   # nothing above 0 -> -1
                  [0, 0, 1, 7]],  # neuron 3 -> class 3 ; grouped: class 1
                 np.uint8).reshape(4, 1, 1, 4)
    p = model.predict(x)
    assert p.tolist() == [1, 0, -1, 3]
    assert p.dtype == np.int32
    assert model.predict(x, num_classes=2).tolist() == [0, 0, -1, 1]
    assert model.predict(x, num_classes=1).tolist() == [0, 0, -1, 0]
    assert OracleModel(specs).predict(x).tolist() == [1, 0, -1, 3]
    assert OracleModel(specs).predict(x, 2).tolist() == [0, 0, -1, 1]
