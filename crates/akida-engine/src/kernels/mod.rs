//! Optimized kernels, with one dispatch point: a [`KernelSet`] (portable, AVX2, AVX-512 with VNNI
//! and VPOPCNTDQ), detected once per process, whose methods run the build of each kernel for that
//! instruction set. Which kernel a layer runs is the plan's choice ([`crate::plan::Method`]).
//!
//! - [`events`]: event-driven accumulation of the data-processing layers (Convolutional,
//!   SeparableConvolutional, FullyConnected);
//! - [`dense`]: the event-style path of the image input layer (InputConvolutional, zero pixels
//!   skipped);
//! - [`dot`]: fixed-work dense kernels (int8 dot products, AVX-512 VNNI) of the convolutions,
//!   fully connected layers and the separable steps;
//! - [`bits`]: the bit-packed FullyConnected kernel (AND + popcount);
//! - [`post`]: pooling, winner-take-all and thresholding.
//!
//! Every accumulating kernel has a plain twin in the same module (`plain_*`), and property tests
//! compare every build of every kernel with it exactly, on random shapes, values and filter
//! ranges; the whole-layer twins are in [`crate::reference`].
//!
//! Weight tensors keep the user-facing layout with the neuron axis last, so the weights one input
//! value feeds are a contiguous row and every kernel reduces to `acc[..] += value * row[..]`.
//! Kernels read weights through a [`WeightsView`] (rows, row stride, a range of filters) and add
//! into an [`OutputRegion`] (positions with a stride), so a processing unit that computes only some
//! filters of a layer reads the layer's weights in place and writes its share of the output.

use std::ops::Range;
use std::sync::OnceLock;

use crate::events::Event;
use crate::shape::{ConvGeometry, Shape3};

pub mod bits;
pub mod dense;
pub mod dot;
pub mod events;
pub mod post;

pub use post::{activate, pool, winner_take_all};

/// An integer accumulator for potentials. The plan picks `i16` when a layer's potential bound
/// allows it (twice the SIMD lanes) and `i32` otherwise; both give identical results within the
/// bound.
pub trait Accumulator: Copy + Default + Send + Sync + 'static {
    /// `acc[i] += value * row[i]` for every `i`; the caller guarantees no overflow.
    fn mac(acc: &mut [Self], row: &[i8], value: i32);
    fn widen(self) -> i32;
}

macro_rules! lanes_mac {
    ($acc:ident, $row:ident, $value:ident, $t:ty, $lanes:literal) => {{
        let (acc_chunks, acc_rest) = $acc.as_chunks_mut::<$lanes>();
        let (row_chunks, row_rest) = $row.as_chunks::<$lanes>();
        if $value == 1 {
            for (a, r) in acc_chunks.iter_mut().zip(row_chunks) {
                for i in 0..$lanes {
                    a[i] += <$t>::from(r[i]);
                }
            }
        } else {
            let v = $value as $t;
            for (a, r) in acc_chunks.iter_mut().zip(row_chunks) {
                for i in 0..$lanes {
                    a[i] += v * <$t>::from(r[i]);
                }
            }
        }
        let v = $value as $t;
        for (a, &w) in acc_rest.iter_mut().zip(row_rest) {
            *a += v * <$t>::from(w);
        }
    }};
}

impl Accumulator for i32 {
    #[inline(always)]
    fn mac(acc: &mut [i32], row: &[i8], value: i32) {
        debug_assert_eq!(acc.len(), row.len());
        lanes_mac!(acc, row, value, i32, 8)
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self
    }
}

impl Accumulator for i16 {
    #[inline(always)]
    fn mac(acc: &mut [i16], row: &[i8], value: i32) {
        debug_assert_eq!(acc.len(), row.len());
        lanes_mac!(acc, row, value, i16, 16)
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        i32::from(self)
    }
}

/// A view of a weight matrix `(rows, row_stride)` (the neuron axis last, so `row_stride` is the
/// layer's neuron count), restricted to the filters (neurons) `filters`.
#[derive(Debug, Clone)]
pub struct WeightsView<'a> {
    pub data: &'a [i8],
    pub row_stride: usize,
    pub filters: Range<usize>,
}

impl<'a> WeightsView<'a> {
    /// All the filters of a matrix with `neurons` columns.
    pub fn full(data: &'a [i8], neurons: usize) -> Self {
        WeightsView { data, row_stride: neurons, filters: 0..neurons }
    }

    /// Number of filters in the view.
    #[inline(always)]
    pub fn width(&self) -> usize {
        self.filters.len()
    }

    /// The weights of row `row` for the viewed filters.
    #[inline(always)]
    pub fn row(&self, row: usize) -> &'a [i8] {
        let start = row * self.row_stride;
        &self.data[start + self.filters.start..start + self.filters.end]
    }
}

/// Where a kernel adds its potentials: position `p` owns `data[p * stride..p * stride + width]`,
/// `width` being the number of filters of the weights view. A dense output has `stride == width`;
/// a processing unit writing filters `f` of an `N`-neuron tensor passes `&mut tensor[f.start..]`
/// with `stride == N`.
#[derive(Debug)]
pub struct OutputRegion<'a, A> {
    pub data: &'a mut [A],
    pub stride: usize,
}

impl<'a, A> OutputRegion<'a, A> {
    /// A dense region of `width` values per position.
    pub fn dense(data: &'a mut [A], width: usize) -> Self {
        OutputRegion { data, stride: width }
    }
}

/// The instruction sets the kernels are built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2 plus AVX-512 F/BW/DQ/VL with VNNI (`vpdpbusd`) and VPOPCNTDQ: the event kernels run their
    /// AVX2 build, the dot-product and bit-packed kernels their AVX-512 one.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The builds of the kernels for one instruction set. Only instruction sets this processor
/// supports can be obtained ([`KernelSet::detected`], [`KernelSet::available`]), which is what
/// makes the SIMD builds safe to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelSet(Isa);

impl KernelSet {
    /// The best set for this processor, detected once per process.
    pub fn detected() -> KernelSet {
        static DETECTED: OnceLock<KernelSet> = OnceLock::new();
        *DETECTED.get_or_init(|| *KernelSet::available().last().expect("the portable set is always available"))
    }

    /// The portable build, available everywhere.
    pub fn portable() -> KernelSet {
        KernelSet(Isa::Portable)
    }

    /// Every set this processor can run, the portable one first, then in increasing width.
    pub fn available() -> Vec<KernelSet> {
        #[allow(unused_mut)]
        let mut sets = vec![KernelSet(Isa::Portable)];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            sets.push(KernelSet(Isa::Avx2));
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            {
                sets.push(KernelSet(Isa::Avx512));
            }
        }
        sets
    }

    /// `"portable"`, `"avx2"` or `"avx512-vnni"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            Isa::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512-vnni",
        }
    }

    /// Whether the set has the AVX-512 builds (VNNI dot products, VPOPCNTDQ).
    pub fn has_avx512(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.0 == Isa::Avx512
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Whether the set has at least the AVX2 builds.
    pub fn has_avx2(self) -> bool {
        self.0 != Isa::Portable
    }
}

/// Defines a [`KernelSet`] method that runs the build of `$imp` for the set's instruction set.
/// The method takes a [`WeightsView`] and an [`OutputRegion`]; the kernel gets their fields as
/// plain arguments: a `&mut` slice passed directly is known to alias nothing, which the compiler
/// needs to vectorize the accumulation (inside a struct argument that knowledge is lost), and
/// scalar arguments let it specialize a kernel for the sizes of its one caller.
macro_rules! dispatch {
    ($(#[$doc:meta])* pub fn $name:ident<A>($($arg:ident: $ty:ty),* $(,)?) = $module:ident::$imp:ident;) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name<A: Accumulator>(self, $($arg: $ty,)* weights: WeightsView<'_>, out: OutputRegion<'_, A>) -> u64 {
            let (first, width) = (weights.filters.start, weights.filters.len());
            match self.0 {
                Isa::Portable => {
                    $module::$imp::<A>($($arg,)* weights.data, weights.row_stride, first, width, out.data, out.stride)
                }
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 | Isa::Avx512 => {
                    #[target_feature(enable = "avx2")]
                    #[allow(clippy::too_many_arguments)]
                    unsafe fn avx2<A: Accumulator>(
                        $($arg: $ty,)*
                        weights: &[i8],
                        row_stride: usize,
                        first: usize,
                        width: usize,
                        out: &mut [A],
                        out_stride: usize,
                    ) -> u64 {
                        $module::$imp::<A>($($arg,)* weights, row_stride, first, width, out, out_stride)
                    }
                    // SAFETY: a set with AVX2 is only built when the processor supports it.
                    unsafe { avx2::<A>($($arg,)* weights.data, weights.row_stride, first, width, out.data, out.stride) }
                }
            }
        }
    };
}

impl KernelSet {
    dispatch! {
        /// Cross-correlation of a dense `u8` image with `weights` `(kh, kw, C, N)`, padded cells
        /// holding `padding`; see [`dense::input_convolution`].
        pub fn input_convolution<A>(image: &[u8], shape: &Shape3, g: &ConvGeometry, padding: u8) = dense::input_convolution;
    }

    dispatch! {
        /// True convolution driven by input events; see [`events::convolve`].
        pub fn convolve_events<A>(events: &[Event], shape: &Shape3, g: &ConvGeometry) = events::convolve;
    }

    dispatch! {
        /// Pointwise step of a separable convolution; see [`events::pointwise`].
        pub fn pointwise<A>(depthwise: &[i32], channels: usize) = events::pointwise;
    }

    dispatch! {
        /// Fully connected layer driven by events; see [`events::fully_connected`].
        pub fn fully_connected_events<A>(events: &[Event], shape: &Shape3) = events::fully_connected;
    }
    /// Depthwise true convolution driven by events (one weight per tap and channel, no SIMD
    /// build); see [`events::depthwise`].
    pub fn depthwise_events(
        self,
        events: &[Event],
        shape: &Shape3,
        g: &ConvGeometry,
        weights: &[i8],
        out: &mut [i32],
    ) -> u64 {
        events::depthwise(events, shape, g, weights, out)
    }
}

/// [`KernelSet::input_convolution`] of the detected set over all the filters, into a dense
/// `(OH, OW, N)` output zeroed by the caller; returns the synaptic operations.
pub fn input_convolution<A: Accumulator>(
    image: &[u8],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    padding: u8,
    out: &mut [A],
) -> u64 {
    let w = WeightsView::full(weights, neurons);
    KernelSet::detected().input_convolution(image, shape, g, padding, w, OutputRegion::dense(out, neurons))
}

/// [`KernelSet::convolve_events`] of the detected set over all the filters, into a dense
/// `(OH, OW, N)` output zeroed by the caller; returns the synaptic operations.
pub fn convolve_events<A: Accumulator>(
    events: &[Event],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    out: &mut [A],
) -> u64 {
    let w = WeightsView::full(weights, neurons);
    KernelSet::detected().convolve_events(events, shape, g, w, OutputRegion::dense(out, neurons))
}

/// [`KernelSet::depthwise_events`] of the detected set.
pub fn depthwise_events(events: &[Event], shape: &Shape3, g: &ConvGeometry, weights: &[i8], out: &mut [i32]) -> u64 {
    KernelSet::detected().depthwise_events(events, shape, g, weights, out)
}

/// [`KernelSet::pointwise`] of the detected set over all the filters, into a dense output zeroed
/// by the caller; returns the synaptic operations.
pub fn pointwise<A: Accumulator>(
    depthwise: &[i32],
    channels: usize,
    weights: &[i8],
    neurons: usize,
    out: &mut [A],
) -> u64 {
    let w = WeightsView::full(weights, neurons);
    KernelSet::detected().pointwise(depthwise, channels, w, OutputRegion::dense(out, neurons))
}

/// [`KernelSet::fully_connected_events`] of the detected set over all the filters, into a dense
/// `(N)` output zeroed by the caller; returns the synaptic operations.
pub fn fully_connected_events<A: Accumulator>(
    events: &[Event],
    shape: &Shape3,
    weights: &[i8],
    neurons: usize,
    out: &mut [A],
) -> u64 {
    let w = WeightsView::full(weights, neurons);
    KernelSet::detected().fully_connected_events(events, shape, w, OutputRegion::dense(out, neurons))
}

#[cfg(test)]
mod tests;
