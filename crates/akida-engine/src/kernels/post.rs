//! What follows accumulation: pooling, winner-take-all and thresholding into events. Their
//! plain twins are [`crate::reference`]'s `pool` and the threshold formula of
//! [`crate::activation`].

use crate::activation::Thresholds;
use crate::events::Event;
use crate::params::PoolingType;
use crate::shape::{PoolGeometry, Shape3};

/// Pools `input` (`(H, W, N)` potentials) into `out` (`(PH, PW, N)`): each window covers the map
/// cells [`PoolAxis::cells`](crate::shape::PoolAxis::cells) gives (Same-mode padding is skipped, so
/// an average divides by the number of map cells). `sums` is scratch space.
pub fn pool(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32], sums: &mut Vec<i64>) {
    let n = shape.channels;
    for py in 0..g.y.output {
        let (y0, y1) = g.y.cells(py);
        for px in 0..g.x.output {
            let (x0, x1) = g.x.cells(px);
            let o = (py * g.x.output + px) * n;
            let dst = &mut out[o..o + n];
            match g.kind {
                PoolingType::Max => {
                    dst.fill(i32::MIN);
                    for y in y0..y1 {
                        let row = &input[shape.index(y, x0, 0)..shape.index(y, x1 - 1, n)];
                        for values in row.chunks_exact(n) {
                            for (d, &v) in dst.iter_mut().zip(values) {
                                *d = (*d).max(v);
                            }
                        }
                    }
                }
                PoolingType::Average => {
                    sums.clear();
                    sums.resize(n, 0);
                    for y in y0..y1 {
                        let row = &input[shape.index(y, x0, 0)..shape.index(y, x1 - 1, n)];
                        for values in row.chunks_exact(n) {
                            for (acc, &v) in sums.iter_mut().zip(values) {
                                *acc += i64::from(v);
                            }
                        }
                    }
                    let count = ((y1 - y0) * (x1 - x0)) as i64;
                    for (d, &sum) in dst.iter_mut().zip(sums.iter()) {
                        *d = sum.div_euclid(count) as i32;
                    }
                }
                PoolingType::NoPooling => unreachable!("no geometry is built without pooling"),
            }
        }
    }
}

/// Winner-take-all: within each group of consecutive neurons, at each position, only the largest
/// potential (the lowest neuron on ties) is kept; the others become `i32::MIN` and cannot fire.
pub fn winner_take_all(values: &mut [i32], neurons: usize, groups: &[std::ops::Range<usize>]) {
    for pixel in values.chunks_exact_mut(neurons) {
        for g in groups.iter().filter(|g| g.len() > 1) {
            let mut best = g.start;
            for n in g.clone() {
                if pixel[n] > pixel[best] {
                    best = n;
                }
            }
            for n in g.clone() {
                if n != best {
                    pixel[n] = i32::MIN;
                }
            }
        }
    }
}

/// Thresholds `potentials` (`(H, W, N)`) and appends the resulting spikes to `out`, in canonical
/// order.
pub fn activate(potentials: &[i32], shape: &Shape3, thresholds: &Thresholds, out: &mut Vec<Event>) {
    let n = shape.channels;
    for (pixel, values) in potentials.chunks_exact(n).enumerate() {
        let (y, x) = ((pixel / shape.width) as u32, (pixel % shape.width) as u32);
        // Branch-free compaction: every candidate event is written to the spare capacity and the
        // length advances only past those that fire.
        out.reserve(n);
        let start = out.len();
        let spare = &mut out.spare_capacity_mut()[..n];
        let mut fired = 0;
        match thresholds.binary_thresholds() {
            Some(fire) => {
                for (c, (&p, &t)) in values.iter().zip(fire).enumerate() {
                    spare[fired].write(Event { y, x, c: c as u32, value: 1 });
                    fired += usize::from(p > t);
                }
            }
            None => {
                for (c, &p) in values.iter().enumerate() {
                    let level = thresholds.response(c, p);
                    spare[fired].write(Event { y, x, c: c as u32, value: i32::from(level) });
                    fired += usize::from(level != 0);
                }
            }
        }
        // SAFETY: the `fired` slots after `start` were initialized by `write` above, and
        // `reserve(n)` made room for at least `n >= fired` of them.
        unsafe { out.set_len(start + fired) };
    }
}
