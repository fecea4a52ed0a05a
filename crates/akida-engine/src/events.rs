//! Sparse event buffers: the non-zero values of a tensor as `(x, y, channel, value)`.

use crate::error::{bail, Result};
use crate::shape::Shape3;

/// One event: a non-zero value at `(y, x, c)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event {
    // Field order gives the canonical (y, x, c) ordering to the derived `Ord`.
    pub y: u32,
    pub x: u32,
    pub c: u32,
    pub value: i32,
}

impl Event {
    #[inline]
    pub fn index(&self, shape: &Shape3) -> usize {
        shape.index(self.y as usize, self.x as usize, self.c as usize)
    }
}

/// Appends the non-zero values of a dense sample to `out`, in canonical `(y, x, c)` order.
pub fn events_from_dense<T: Copy + Into<i32>>(shape: &Shape3, dense: &[T], out: &mut Vec<Event>) {
    debug_assert_eq!(dense.len(), shape.len());
    let channels = shape.channels;
    for (pixel, values) in dense.chunks_exact(channels).enumerate() {
        for (c, &v) in values.iter().enumerate() {
            let value: i32 = v.into();
            if value != 0 {
                out.push(Event {
                    y: (pixel / shape.width) as u32,
                    x: (pixel % shape.width) as u32,
                    c: c as u32,
                    value,
                });
            }
        }
    }
}

/// Largest number of samples of one event batch.
pub const MAX_SAMPLES: usize = 1 << 28;

/// A batch of samples stored as events, in canonical order (by sample, then y, x, channel), with
/// no duplicate coordinates and no zero value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    shape: Shape3,
    /// `offsets[i]..offsets[i + 1]` are the events of sample `i`.
    offsets: Vec<usize>,
    events: Vec<Event>,
}

impl EventBatch {
    /// Builds a batch from parallel coordinate arrays. Checks coordinates against `shape`, sample
    /// indices against `num_samples`, values (1..=255), and rejects duplicate coordinates.
    pub fn from_coordinates(
        shape: Shape3,
        num_samples: usize,
        sample: &[i64],
        x: &[i64],
        y: &[i64],
        channel: &[i64],
        value: &[i64],
    ) -> Result<Self> {
        if num_samples > MAX_SAMPLES {
            bail!(Input, "an event batch holds at most {MAX_SAMPLES} samples, got {num_samples}");
        }
        let n = sample.len();
        if [x.len(), y.len(), channel.len(), value.len()].iter().any(|&l| l != n) {
            bail!(
                Input,
                "events need arrays of one length: sample {}, x {}, y {}, channel {}, value {}",
                n,
                x.len(),
                y.len(),
                channel.len(),
                value.len()
            );
        }
        let mut tagged = crate::error::reserved_vec(n, "the events")?;
        for i in 0..n {
            let check = |v: i64, limit: usize, what: &str| -> Result<u32> {
                if v < 0 || v as u64 >= limit as u64 {
                    bail!(
                        Input,
                        "event {i}: {what} {v} is out of range: it must be in [0, {}]",
                        limit.saturating_sub(1)
                    );
                }
                Ok(v as u32)
            };
            let s = check(sample[i], num_samples, "sample")?;
            let ev = Event {
                x: check(x[i], shape.width, "x")?,
                y: check(y[i], shape.height, "y")?,
                c: check(channel[i], shape.channels, "channel")?,
                value: match value[i] {
                    v @ 1..=255 => v as i32,
                    v => bail!(Input, "event {i}: value {v} is out of range: it must be in [1, 255]"),
                },
            };
            tagged.push((s, ev));
        }
        tagged.sort_unstable();
        for w in tagged.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if a.0 == b.0 && (a.1.y, a.1.x, a.1.c) == (b.1.y, b.1.x, b.1.c) {
                bail!(Input, "duplicate event in sample {} at x={}, y={}, channel={}", a.0, a.1.x, a.1.y, a.1.c);
            }
        }
        let mut offsets: Vec<usize> = crate::error::zeroed_vec(num_samples.checked_add(1), "the event offsets")?;
        for (s, _) in &tagged {
            offsets[*s as usize + 1] += 1;
        }
        for i in 0..num_samples {
            offsets[i + 1] += offsets[i];
        }
        let events = crate::error::collected_vec(tagged.iter().map(|&(_, e)| e), "the events")?;
        Ok(EventBatch { shape, offsets, events })
    }

    /// The events of a dense uint8 batch of `num_samples` samples of `shape`.
    pub fn from_dense(shape: Shape3, num_samples: usize, dense: &[u8]) -> Result<Self> {
        if Some(dense.len()) != shape.len().checked_mul(num_samples) {
            bail!(Input, "dense data of {} values does not hold {num_samples} samples of {shape}", dense.len());
        }
        let mut offsets = crate::error::reserved_vec(num_samples + 1, "the event offsets")?;
        offsets.push(0);
        // Counted first, so that the events are allocated once, fallibly.
        let count = dense.iter().filter(|&&v| v != 0).count();
        let mut events = crate::error::reserved_vec(count, "the events")?;
        if !shape.is_empty() {
            for sample in dense.chunks_exact(shape.len()) {
                events_from_dense(&shape, sample, &mut events);
                offsets.push(events.len());
            }
        } else {
            offsets.resize(num_samples + 1, 0);
        }
        Ok(EventBatch { shape, offsets, events })
    }

    pub fn shape(&self) -> Shape3 {
        self.shape
    }

    pub fn num_samples(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Total number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events of sample `i`.
    pub fn sample(&self, i: usize) -> &[Event] {
        &self.events[self.offsets[i]..self.offsets[i + 1]]
    }

    /// All events with their sample index, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Event)> {
        (0..self.num_samples()).flat_map(move |s| self.sample(s).iter().map(move |e| (s, e)))
    }

    /// The samples `start..end` as a new batch, or [`Error::Memory`](crate::Error::Memory) when
    /// their copy cannot be allocated.
    pub fn slice(&self, start: usize, end: usize) -> Result<EventBatch> {
        let base = self.offsets[start];
        Ok(EventBatch {
            shape: self.shape,
            offsets: crate::error::collected_vec(
                self.offsets[start..=end].iter().map(|o| o - base),
                "the event offsets",
            )?,
            events: crate::error::copied_vec(&self.events[base..self.offsets[end]], "a copy of the events")?,
        })
    }

    /// Writes the batch as dense uint8 `(num_samples, H, W, C)` data.
    pub fn to_dense(&self) -> Result<Vec<u8>> {
        let mut dense: Vec<u8> =
            crate::error::zeroed_vec(self.shape.len().checked_mul(self.num_samples()), "the dense events")?;
        for (s, e) in self.iter() {
            dense[s * self.shape.len() + e.index(&self.shape)] = e.value as u8;
        }
        Ok(dense)
    }

    /// Largest event value, 0 for an empty batch.
    pub fn max_value(&self) -> i32 {
        self.events.iter().map(|e| e.value).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let shape = Shape3::new(2, 3, 2);
        let b =
            EventBatch::from_coordinates(shape, 2, &[1, 0, 0], &[2, 1, 0], &[1, 0, 1], &[0, 1, 1], &[5, 6, 7]).unwrap();
        assert_eq!(b.num_samples(), 2);
        let s0: Vec<_> = b.sample(0).iter().map(|e| (e.y, e.x, e.c, e.value)).collect();
        assert_eq!(s0, vec![(0, 1, 1, 6), (1, 0, 1, 7)]);
        let dense = b.to_dense().unwrap();
        assert_eq!(EventBatch::from_dense(shape, 2, &dense).unwrap(), b);
    }

    #[test]
    fn rejects_bad_events() {
        let shape = Shape3::new(2, 2, 1);
        assert!(EventBatch::from_coordinates(shape, 1, &[0, 0], &[1, 1], &[0, 0], &[0, 0], &[1, 1]).is_err());
        assert!(EventBatch::from_coordinates(shape, 1, &[0], &[2], &[0], &[0], &[1]).is_err());
        assert!(EventBatch::from_coordinates(shape, 1, &[0], &[0], &[0], &[0], &[0]).is_err());
        assert!(EventBatch::from_coordinates(shape, 1, &[1], &[0], &[0], &[0], &[1]).is_err());
    }
}
