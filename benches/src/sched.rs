//! `Scheduler<u64>` driven through admission → `RunJob` → `job_finished` cycles.
//!
//! The loop keeps a fixed number of commands in the scheduler between cycles (running plus
//! queued). One [`SchedLoop::cycle`] offers one command (round-robin over the categories) and
//! finishes the longest-running job, draining the outputs after each input as the drive
//! contract requires. With more commands in the system than worker slots, every cycle queues
//! one command and starts one from the queue: the path a busy node takes for each command.

use std::collections::VecDeque;

use lokimq_core::ids::{CategoryId, WorkerId};
use lokimq_core::sched::{
    CategoryLimits, QueueLimit, SchedJob, SchedOutput, Scheduler, SchedulerConfig,
};

use crate::{HarnessError, core_err};

/// The shape of a scheduler benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Number of command categories.
    pub categories: u16,
    /// Reserved threads of every category.
    pub reserved: u16,
    /// General worker slots.
    pub general: u16,
    /// Commands kept in the scheduler between cycles (running + queued).
    pub in_system: usize,
}

/// The scheduler and the harness's view of its busy workers.
#[derive(Debug)]
pub struct SchedLoop {
    sched: Scheduler<u64>,
    /// Busy workers, in the order their jobs started.
    running: VecDeque<WorkerId>,
    categories: u16,
    next: u64,
    started: u64,
    /// Sum of the payloads handed back by `RunJob`, so the payload is really read.
    checksum: u64,
}

impl SchedLoop {
    /// Builds the scheduler (unlimited queues, so nothing is dropped) and offers
    /// `shape.in_system` commands.
    pub fn new(shape: Shape) -> Result<Self, HarnessError> {
        if shape.categories == 0 {
            return Err(HarnessError::Unexpected("at least one category".into()));
        }
        let mut config = SchedulerConfig::new(shape.general);
        for _ in 0..shape.categories {
            config =
                config.with_category(CategoryLimits::new(shape.reserved, QueueLimit::Unlimited));
        }
        let mut l = Self {
            sched: Scheduler::new(config).map_err(core_err)?,
            running: VecDeque::new(),
            categories: shape.categories,
            next: 0,
            started: 0,
            checksum: 0,
        };
        for _ in 0..shape.in_system {
            l.admit()?;
        }
        Ok(l)
    }

    fn admit(&mut self) -> Result<(), HarnessError> {
        // `next % categories < categories <= u16::MAX`.
        let category = CategoryId((self.next % u64::from(self.categories)) as u16);
        let _offer = self
            .sched
            .offer_command(category, self.next)
            .map_err(core_err)?;
        self.next += 1;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), HarnessError> {
        while let Some(out) = self.sched.poll_output() {
            match out {
                SchedOutput::RunJob {
                    worker,
                    job: SchedJob::Command { job, .. },
                } => {
                    self.running.push_back(worker);
                    self.started += 1;
                    self.checksum = self.checksum.wrapping_add(job);
                }
                other => return Err(HarnessError::Unexpected(format!("{other:?}"))),
            }
        }
        Ok(())
    }

    /// One admission and one completion.
    pub fn cycle(&mut self) -> Result<(), HarnessError> {
        self.admit()?;
        let worker = self
            .running
            .pop_front()
            .ok_or_else(|| HarnessError::Unexpected("no job running".into()))?;
        self.sched.job_finished(worker).map_err(core_err)?;
        self.drain()
    }

    /// Commands offered so far.
    #[must_use]
    pub fn offered(&self) -> u64 {
        self.next
    }

    /// Commands started so far.
    #[must_use]
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Commands waiting.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.sched.commands_queued()
    }

    /// Jobs running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Sum of the payloads of every started command.
    #[must_use]
    pub fn checksum(&self) -> u64 {
        self.checksum
    }
}

/// The trivial baseline: a FIFO of `u64` payloads at the same depth, one push and one pop per
/// cycle.
#[derive(Debug)]
pub struct FifoLoop {
    queue: VecDeque<u64>,
    next: u64,
    checksum: u64,
}

impl FifoLoop {
    /// A FIFO holding `depth` payloads.
    #[must_use]
    pub fn new(depth: usize) -> Self {
        let mut queue = VecDeque::with_capacity(depth + 1);
        queue.extend(0..depth as u64);
        Self {
            queue,
            next: depth as u64,
            checksum: 0,
        }
    }

    /// One push and one pop.
    pub fn cycle(&mut self) {
        self.queue.push_back(self.next);
        self.next += 1;
        if let Some(v) = self.queue.pop_front() {
            self.checksum = self.checksum.wrapping_add(v);
        }
    }

    /// Sum of the popped payloads.
    #[must_use]
    pub fn checksum(&self) -> u64 {
        self.checksum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cycle_admits_one_and_starts_one_from_the_queue() {
        for categories in [1, 8, 64] {
            for reserved in [0, 1] {
                let shape = Shape {
                    categories,
                    reserved,
                    general: 8,
                    in_system: 8 + usize::from(categories * reserved) + 64,
                };
                let mut l = SchedLoop::new(shape).unwrap();
                let in_system = l.running() + l.queued();
                assert_eq!(in_system, shape.in_system);
                assert!(l.queued() > 0, "{shape:?}");
                let started = l.started();
                for _ in 0..1000 {
                    l.cycle().unwrap();
                    assert_eq!(l.running() + l.queued(), in_system);
                }
                assert_eq!(l.offered(), shape.in_system as u64 + 1000);
                assert_eq!(l.started(), started + 1000);
                // Commands start in arrival order here, so the started payloads are exactly
                // 0..started.
                let n = l.started();
                assert_eq!(l.checksum(), n * (n - 1) / 2, "{shape:?}");
            }
        }
    }

    #[test]
    fn without_backlog_every_command_starts_at_once() {
        let mut l = SchedLoop::new(Shape {
            categories: 1,
            reserved: 0,
            general: 8,
            in_system: 0,
        })
        .unwrap();
        for i in 1..=100 {
            l.cycle().unwrap();
            assert_eq!((l.running(), l.queued()), (0, 0));
            assert_eq!(l.started(), i);
        }
    }

    #[test]
    fn fifo_baseline_pops_in_order() {
        let mut f = FifoLoop::new(4);
        for _ in 0..6 {
            f.cycle();
        }
        assert_eq!(f.checksum(), (0..6).sum::<u64>());
    }
}
