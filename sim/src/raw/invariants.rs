//! The invariants checked after every step, and the end-of-run checks.

use super::Sim;

impl Sim {
    // -----------------------------------------------------------------------------------------
    // invariants

    /// Checks every invariant now, on every node; panics (printing the seed and log tail) on a
    /// violation.
    pub fn check_invariants(&mut self) {
        self.refresh();
        self.idle_checked_at = None;
        self.check_dirty();
    }

    /// Checks the nodes touched since the last check (the others cannot have changed), and the
    /// idle-expiry invariant whenever time moved.
    pub(crate) fn check_dirty(&mut self) {
        let now = self.now;
        let dirty = std::mem::take(&mut self.dirty);
        for n in dirty {
            if let Some(out) = self.nodes[n].node.poll_output() {
                self.fail(&format!("node {n}: output left undrained: {out:?}"));
            }
            let sn = &self.nodes[n];
            let st = sn.node.stats();
            let mut problems = Vec::new();
            if st.connections != sn.open_conns.len() {
                problems.push(format!(
                    "stats().connections = {} but the driver has {} open: {:?}",
                    st.connections,
                    sn.open_conns.len(),
                    sn.open_conns
                ));
            }
            let s = &st.sched;
            if s.active > s.max_workers {
                problems.push(format!(
                    "active {} > max_workers {}",
                    s.active, s.max_workers
                ));
            }
            for (i, c) in s.categories.iter().enumerate() {
                if c.max_queue
                    .limit()
                    .is_some_and(|max| c.queued > max as usize)
                {
                    problems.push(format!(
                        "category {i}: queued {} > max_queue {}",
                        c.queued, c.max_queue
                    ));
                }
            }
            let general_busy = sn.busy.keys().filter(|w| w.0 < s.max_workers).count();
            let tagged_busy = sn.busy.len() - general_busy;
            if general_busy != usize::from(s.active) || tagged_busy != usize::from(s.tagged_busy) {
                problems.push(format!(
                    "driver has {general_busy} general + {tagged_busy} tagged jobs running, scheduler says {} + {}",
                    s.active, s.tagged_busy
                ));
            }
            if !problems.is_empty() {
                self.fail(&format!("node {n} at {now:?}: {}", problems.join("; ")));
            }
        }
        if self.check_idle_expiry && self.idle_checked_at != Some(now) {
            self.idle_checked_at = Some(now);
            for n in 0..self.nodes.len() {
                for m in 0..self.nodes.len() {
                    let pk = self.nodes[m].pubkey;
                    if !self.nodes[n].node.has_outgoing_sn(&pk) {
                        continue;
                    }
                    match self.activity.get(&(n, pk)) {
                        None => self.fail(&format!(
                            "node {n} has an outgoing SN connection to node {m} nobody asked for"
                        )),
                        Some(a) if now > a.last + a.keep_alive => self.fail(&format!(
                            "node {n}: outgoing SN connection to node {m} outlived its idle deadline \
                             (last possible activity {:?}, keep-alive {:?}, now {now:?})",
                            a.last, a.keep_alive
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// Asserts that every request made through the harness on a node that did not shut down
    /// has exactly one outcome.
    pub fn assert_requests_resolved(&self) {
        for (n, sn) in self.nodes.iter().enumerate() {
            if sn.node.stats().sched.max_workers == 0 || sn.stopped.is_some() {
                continue;
            }
            for (id, r) in &sn.requests {
                assert_eq!(
                    r.outcomes.len(),
                    1,
                    "seed {}: node {n}: request {id:?} ({:?} to {:?} at {:?}) has outcomes {:?}",
                    self.seed,
                    r.command,
                    r.to,
                    r.sent_at,
                    r.outcomes
                );
            }
        }
    }

    /// Number of events queued and bytes in flight (for tests that wait for quiet).
    #[must_use]
    pub fn pending(&self) -> (usize, usize) {
        (self.queue.len(), self.net.in_flight())
    }
}
