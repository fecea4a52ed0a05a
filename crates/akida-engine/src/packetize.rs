//! Event-camera streams to model inputs: events `(x, y, t, p)` accumulated into packets of dense
//! uint8 counts, by event count or by time window. The contract is `docs/converters.md`.

use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{bail, Result};

/// One field of an event stream, read by index: a slice, or a strided view of a structured
/// array in the bindings (so tonic-style records need no copy).
pub trait Column: Sync {
    fn len(&self) -> usize;
    fn at(&self, i: usize) -> i64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Column for [i64] {
    fn len(&self) -> usize {
        <[i64]>::len(self)
    }
    #[inline]
    fn at(&self, i: usize) -> i64 {
        self[i]
    }
}

/// The first index in `lo..hi` whose value is not below `bound` (values non-decreasing).
fn first_not_below<C: Column + ?Sized>(t: &C, bound: i128) -> usize {
    let (mut lo, mut hi) = (0, t.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if i128::from(t.at(mid)) < bound {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// How a stream is cut into packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketSplit {
    /// Consecutive runs of this many events (the last may be shorter).
    Count(usize),
    /// Windows of this duration from the first event's time; `t` must not decrease.
    Time(i64),
}

/// The packet layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSpec {
    pub width: usize,
    pub height: usize,
    /// 1 (polarities merged) or 2 (OFF in channel 0, ON in channel 1).
    pub channels: usize,
    pub downsample: usize,
    /// Counts saturate at `2^input_bits - 1`.
    pub input_bits: u8,
    pub split: PacketSplit,
}

/// Largest output accepted, in bytes (4 GiB).
pub const MAX_PACKET_BYTES: u128 = 1 << 32;

impl PacketSpec {
    /// Validates the layout.
    pub fn new(
        width: i64,
        height: i64,
        channels: i64,
        downsample: i64,
        input_bits: i64,
        split: PacketSplit,
    ) -> Result<Self> {
        let limit = 1i64 << 20;
        if !(1..=limit).contains(&width) || !(1..=limit).contains(&height) {
            bail!(Parameter, "the sensor size must be in 1..={limit}, got {width}x{height}");
        }
        if channels != 1 && channels != 2 {
            bail!(Parameter, "polarity channels must be 1 (merged) or 2 (split), got {channels}");
        }
        if !(1..=limit).contains(&downsample) {
            bail!(Parameter, "downsample must be >= 1, got {downsample}");
        }
        if !(1..=8).contains(&input_bits) {
            bail!(Parameter, "input_bits must be in [1, 8], got {input_bits}");
        }
        match split {
            PacketSplit::Count(0) => bail!(Parameter, "packet_size must be >= 1"),
            PacketSplit::Time(w) if w < 1 => bail!(Parameter, "time_window must be >= 1, got {w}"),
            _ => {}
        }
        Ok(PacketSpec {
            width: width as usize,
            height: height as usize,
            channels: channels as usize,
            downsample: downsample as usize,
            input_bits: input_bits as u8,
            split,
        })
    }

    /// `(height, width, channels)` of one packet.
    pub fn packet_shape(&self) -> (usize, usize, usize) {
        (self.height.div_ceil(self.downsample), self.width.div_ceil(self.downsample), self.channels)
    }

    fn packet_len(&self) -> usize {
        let (h, w, c) = self.packet_shape();
        h * w * c
    }

    #[inline]
    fn cell(&self, x: i64, y: i64, p: i64) -> usize {
        let (_, w, c) = self.packet_shape();
        let channel = if c == 2 && p > 0 { 1 } else { 0 };
        ((y as usize / self.downsample) * w + x as usize / self.downsample) * c + channel
    }
}

/// Checks lengths, coordinates and (for time windows) the order; returns the number of packets.
fn check<C: Column + ?Sized>(x: &C, y: &C, t: &C, p: &C, spec: &PacketSpec) -> Result<usize> {
    let n = x.len();
    if y.len() != n || t.len() != n || p.len() != n {
        bail!(Input, "x, y, t and p need one length, got {}, {}, {} and {}", n, y.len(), t.len(), p.len());
    }
    let (w, h) = (spec.width as i64, spec.height as i64);
    if let Some(i) = (0..n).find(|&i| !(0..w).contains(&x.at(i)) || !(0..h).contains(&y.at(i))) {
        bail!(Input, "event {i} at x={}, y={} is outside the {}x{} sensor", x.at(i), y.at(i), spec.width, spec.height);
    }
    if n == 0 {
        return Ok(0);
    }
    let packets = match spec.split {
        PacketSplit::Count(size) => n.div_ceil(size),
        PacketSplit::Time(window) => {
            if let Some(i) = (1..n).find(|&i| t.at(i) < t.at(i - 1)) {
                bail!(
                    Input,
                    "timestamps must not decrease for time windows: event {i} has t={} after t={}",
                    t.at(i),
                    t.at(i - 1)
                );
            }
            let span = (i128::from(t.at(n - 1)) - i128::from(t.at(0))) / i128::from(window);
            if span as u128 * spec.packet_len() as u128 > MAX_PACKET_BYTES {
                bail!(
                    Input,
                    "time windows of {window} over a stream of {} time units would need {} packets",
                    i128::from(t.at(n - 1)) - i128::from(t.at(0)),
                    span + 1
                );
            }
            span as usize + 1
        }
    };
    if packets as u128 * spec.packet_len() as u128 > MAX_PACKET_BYTES {
        bail!(Input, "{packets} packets of {} values exceed the {MAX_PACKET_BYTES}-byte limit", spec.packet_len());
    }
    Ok(packets)
}

/// The event range of packet `k`.
fn packet_range<C: Column + ?Sized>(t: &C, spec: &PacketSpec, k: usize) -> std::ops::Range<usize> {
    match spec.split {
        PacketSplit::Count(size) => k * size..((k + 1) * size).min(t.len()),
        PacketSplit::Time(window) => {
            // In i128: window starts and ends may lie beyond the i64 range.
            let start = i128::from(t.at(0)) + k as i128 * i128::from(window);
            first_not_below(t, start)..first_not_below(t, start + i128::from(window))
        }
    }
}

/// Packets as a dense `(packets, H', W', C)` uint8 array; returns the packet count and the data.
/// Packets are filled in parallel when `parallel` is set; the result is the same.
pub fn packetize<C: Column + ?Sized>(
    x: &C,
    y: &C,
    t: &C,
    p: &C,
    spec: &PacketSpec,
    parallel: bool,
) -> Result<(usize, Vec<u8>)> {
    packetize_cancellable(x, y, t, p, spec, parallel, &AtomicBool::new(false))
}

/// [`packetize`], giving up when `cancel` is set (by another thread, as the bindings do on
/// Ctrl-C): packets not started by then are left empty, so the result of a cancelled call is
/// meaningless and is meant to be dropped. The flag is read before each packet.
pub fn packetize_cancellable<C: Column + ?Sized>(
    x: &C,
    y: &C,
    t: &C,
    p: &C,
    spec: &PacketSpec,
    parallel: bool,
    cancel: &AtomicBool,
) -> Result<(usize, Vec<u8>)> {
    let packets = check(x, y, t, p, spec)?;
    let len = spec.packet_len();
    let mut out: Vec<u8> = crate::error::zeroed_vec(packets.checked_mul(len), "the packets")?;
    let max = ((1u32 << spec.input_bits) - 1) as u8;
    let fill = |(k, packet): (usize, &mut [u8])| {
        // Writing the zeros first makes the first touch of each fresh page a write (one page
        // fault instead of two), and spreads that cost over the workers.
        packet.fill(0);
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        for i in packet_range(t, spec, k) {
            let cell = &mut packet[spec.cell(x.at(i), y.at(i), p.at(i))];
            *cell = cell.saturating_add(1).min(max);
        }
    };
    if len > 0 {
        if parallel {
            out.par_chunks_mut(len).enumerate().for_each(fill);
        } else {
            out.chunks_mut(len).enumerate().for_each(fill);
        }
    }
    Ok((packets, out))
}

/// Plain reference of [`packetize`]: one event at a time, packet index computed per event.
pub fn reference_packetize(x: &[i64], y: &[i64], t: &[i64], p: &[i64], spec: &PacketSpec) -> Result<(usize, Vec<u8>)> {
    let packets = check(x, y, t, p, spec)?;
    let (ph, pw, c) = spec.packet_shape();
    let mut out = vec![0u32; packets * ph * pw * c];
    for i in 0..x.len() {
        let k = match spec.split {
            PacketSplit::Count(size) => i / size,
            PacketSplit::Time(window) => ((i128::from(t[i]) - i128::from(t[0])) / i128::from(window)) as usize,
        };
        let channel = if c == 2 && p[i] > 0 { 1 } else { 0 };
        let (cy, cx) = (y[i] as usize / spec.downsample, x[i] as usize / spec.downsample);
        out[((k * ph + cy) * pw + cx) * c + channel] += 1;
    }
    let max = (1u32 << spec.input_bits) - 1;
    Ok((packets, out.into_iter().map(|v| v.min(max) as u8).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn packetize_matches_reference(seed in any::<u64>()) {
            let mut rng = Rng(seed);
            let (w, h) = (rng.range(1, 40), rng.range(1, 40));
            let n = rng.range(0, 3000) as usize;
            let x: Vec<i64> = (0..n).map(|_| rng.range(0, w - 1)).collect();
            let y: Vec<i64> = (0..n).map(|_| rng.range(0, h - 1)).collect();
            let p: Vec<i64> = (0..n).map(|_| rng.range(-1, 1)).collect();
            let mut t: Vec<i64> = (0..n).map(|_| rng.range(0, 10_000)).collect();
            t.sort_unstable();
            let split = if rng.chance(0.5) { PacketSplit::Count(rng.range(1, 500) as usize) } else { PacketSplit::Time(rng.range(1, 3000)) };
            let spec = PacketSpec::new(w, h, rng.range(1, 2), rng.range(1, 3), rng.pick(&[1, 2, 4, 8]), split).unwrap();
            let expected = reference_packetize(&x, &y, &t, &p, &spec).unwrap();
            prop_assert_eq!(&packetize(&x[..], &y[..], &t[..], &p[..], &spec, true).unwrap(), &expected);
            prop_assert_eq!(&packetize(&x[..], &y[..], &t[..], &p[..], &spec, false).unwrap(), &expected);
        }
    }

    #[test]
    fn a_cancelled_call_stops_before_its_packets() {
        let n = 10_000;
        let x: Vec<i64> = (0..n).map(|i| i % 8).collect();
        let y = x.clone();
        let t: Vec<i64> = (0..n).collect();
        let p = vec![1i64; n as usize];
        let spec = PacketSpec::new(8, 8, 1, 1, 8, PacketSplit::Count(10)).unwrap();
        let cancel = AtomicBool::new(true);
        for parallel in [false, true] {
            let (packets, data) =
                packetize_cancellable(&x[..], &y[..], &t[..], &p[..], &spec, parallel, &cancel).unwrap();
            assert_eq!(packets, 1000);
            assert!(data.iter().all(|&v| v == 0), "no packet is filled once cancelled");
            let whole = packetize(&x[..], &y[..], &t[..], &p[..], &spec, parallel).unwrap();
            assert_eq!(whole, reference_packetize(&x, &y, &t, &p, &spec).unwrap());
        }
    }

    #[test]
    fn rejects_bad_streams() {
        let spec = PacketSpec::new(4, 4, 2, 1, 1, PacketSplit::Time(10)).unwrap();
        let run = |x: &[i64], y: &[i64], t: &[i64], p: &[i64], spec: &PacketSpec| packetize(x, y, t, p, spec, true);
        assert!(run(&[4], &[0], &[0], &[1], &spec).is_err());
        assert!(run(&[0, 0], &[0, 0], &[5, 4], &[1, 1], &spec).is_err());
        assert!(run(&[0], &[0, 1], &[5], &[1], &spec).is_err());
        let huge = PacketSpec::new(128, 128, 2, 1, 1, PacketSplit::Time(1)).unwrap();
        assert!(run(&[0, 0], &[0, 0], &[0, i64::MAX / 2], &[1, 1], &huge).is_err());
        assert_eq!(run(&[], &[], &[], &[], &spec).unwrap(), (0, vec![]));
        // Windows reaching beyond the i64 range.
        let wide = PacketSpec::new(2, 1, 1, 1, 4, PacketSplit::Time(i64::MAX)).unwrap();
        let (packets, data) = run(&[0, 1, 1], &[0, 0, 0], &[i64::MIN, 0, i64::MAX], &[1, 1, 1], &wide).unwrap();
        assert_eq!((packets, data.iter().map(|&v| u32::from(v)).sum::<u32>()), (3, 3));
        let near = PacketSpec::new(1, 1, 1, 1, 4, PacketSplit::Time(3)).unwrap();
        assert_eq!(run(&[0, 0], &[0, 0], &[i64::MAX - 2, i64::MAX], &[0, 0], &near).unwrap(), (1, vec![2]));
    }
}
