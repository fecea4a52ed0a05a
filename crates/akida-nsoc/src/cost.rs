//! Counts of an emulated run and the cost model that turns them into estimates.
//!
//! The counts are exact (the emulator counts them); everything the cost model returns is an
//! estimate, and its coefficients are assumptions fitted to the public board figures.

use std::ops::AddAssign;

use crate::device::{Device, NpIdent};

/// What one NP (or the HRC) did during a run, summed over samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events received.
    pub input_events: u64,
    /// Events emitted.
    pub output_events: u64,
    /// Synaptic operations: one per input event and weight it reaches (for the HRC, one per
    /// multiply-add of its dense convolution).
    pub synaptic_ops: u64,
    /// Packets sent over the mesh (one per event and destination NP).
    pub packets: u64,
    /// Mesh hops those packets travelled (XY routing).
    pub hops: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.input_events += o.input_events;
        self.output_events += o.output_events;
        self.synaptic_ops += o.synaptic_ops;
        self.packets += o.packets;
        self.hops += o.hops;
    }
}

/// Hops from one NP to another under XY routing: along the row to the destination column, then
/// along the column (an assumption: public documents call the fabric a mesh without naming its
/// routing). NPs of one node are 0 hops apart.
pub fn xy_hops(from: NpIdent, to: NpIdent) -> u64 {
    u64::from(from.col.abs_diff(to.col)) + u64::from(from.row.abs_diff(to.row))
}

/// Coefficients of the cost model. Every one is an assumption.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Clock cycles an NP spends per synaptic operation.
    pub cycles_per_synaptic_op: f64,
    /// Clock cycles an NP spends per input event (decoding, addressing).
    pub cycles_per_input_event: f64,
    /// Multiply-adds the HRC performs per clock cycle (dense, whatever the sparsity).
    pub hrc_macs_per_cycle: f64,
    /// Fixed cycles per pass (loading, synchronisation).
    pub cycles_per_pass: f64,
    /// Board power when idle, watts.
    pub floor_power_w: f64,
    /// Dynamic energy per synaptic operation, joules.
    pub joules_per_synaptic_op: f64,
    /// Dynamic energy per packet hop, joules.
    pub joules_per_hop: f64,
}

impl CostModel {
    /// Coefficients fitted to the public figures (`docs/nsoc.md`, "Calibration"): with the
    /// emulated counts of AkidaNet 0.5 at 224 and of the DS-CNN keyword-spotting net (random
    /// weights, 35-78 % of outputs firing), 0.352 cycles per synaptic operation and 15.7 cycles
    /// per input event reproduce the published ~4.3 M clocks per AkidaNet frame and ~94,000 per
    /// DS-CNN frame; 8.7 pJ per synaptic operation adds the ~0.1 W above the 0.9 W board floor at
    /// the published ~47 AkidaNet frames/s. HRC throughput (64 multiply-adds per cycle) and the
    /// 1,000 cycles per pass are assumptions the two figures cannot separate.
    pub fn calibrated() -> Self {
        CostModel {
            cycles_per_synaptic_op: 0.352,
            cycles_per_input_event: 15.7,
            hrc_macs_per_cycle: 64.0,
            cycles_per_pass: 1_000.0,
            floor_power_w: 0.9,
            joules_per_synaptic_op: 8.7e-12,
            joules_per_hop: 0.5e-12,
        }
    }

    /// Cycles of one pass: its busiest NP bounds it (NPs work in parallel), and the HRC's dense
    /// work comes before the NPs receive its events.
    pub fn pass_cycles(&self, nps: &[Counts], hrc: Option<&Counts>) -> f64 {
        let busiest = nps
            .iter()
            .map(|c| {
                c.synaptic_ops as f64 * self.cycles_per_synaptic_op
                    + c.input_events as f64 * self.cycles_per_input_event
            })
            .fold(0.0, f64::max);
        let hrc = hrc.map_or(0.0, |c| c.synaptic_ops as f64 / self.hrc_macs_per_cycle);
        busiest + hrc + self.cycles_per_pass
    }

    /// Estimates for `samples` frames whose passes took `cycles` in total and whose work is
    /// `total` (all NPs and the HRC).
    pub fn estimate(&self, device: &Device, cycles: f64, total: &Counts, samples: u64) -> Estimate {
        let clock = device.clock_hz.value as f64;
        let seconds = cycles / clock;
        let frames = samples.max(1) as f64;
        let dynamic = total.synaptic_ops as f64 * self.joules_per_synaptic_op + total.hops as f64 * self.joules_per_hop;
        let energy = self.floor_power_w * seconds + dynamic;
        Estimate {
            cycles_per_frame: cycles / frames,
            latency_s: seconds / frames,
            frames_per_s: if seconds > 0.0 { frames / seconds } else { f64::INFINITY },
            energy_per_frame_j: energy / frames,
            power_w: if seconds > 0.0 { energy / seconds } else { self.floor_power_w },
        }
    }
}

/// What the cost model estimates; every field is an estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub cycles_per_frame: f64,
    pub latency_s: f64,
    pub frames_per_s: f64,
    pub energy_per_frame_j: f64,
    pub power_w: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xy_hops_count_columns_then_rows() {
        let a = NpIdent { col: 1, row: 1, id: 0 };
        let b = NpIdent { col: 4, row: 3, id: 2 };
        assert_eq!(xy_hops(a, b), 5);
        assert_eq!(xy_hops(b, a), 5);
        assert_eq!(xy_hops(a, NpIdent { id: 3, ..a }), 0);
    }

    #[test]
    fn the_busiest_np_bounds_a_pass_and_energy_adds_floor_and_dynamic_parts() {
        let model = CostModel::calibrated();
        let idle = Counts::default();
        let busy = Counts { synaptic_ops: 8_000, input_events: 100, ..Counts::default() };
        let cycles = model.pass_cycles(&[idle, busy], None);
        assert!((cycles - (8_000.0 * 0.352 + 100.0 * 15.7 + 1_000.0)).abs() < 1e-6);
        let hrc = Counts { synaptic_ops: 6_400, ..Counts::default() };
        assert!((model.pass_cycles(&[busy], Some(&hrc)) - (cycles + 100.0)).abs() < 1e-6);
        let device = Device::akd1000();
        let e = model.estimate(&device, 3.0e8, &busy, 10);
        assert!((e.latency_s - 0.1).abs() < 1e-12);
        assert!((e.frames_per_s - 10.0).abs() < 1e-9);
        assert!(e.energy_per_frame_j > 0.09 && e.power_w >= 0.9);
    }
}
