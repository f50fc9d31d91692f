//! Property tests of the scheduler against a small reference model.
//!
//! Random configurations and random sequences of operations (commands, injected tasks, reply
//! jobs, `job()`s, batches with every kind of completion and target, timers added, cancelled
//! and fired, jobs finishing in random order, bogus `job_finished` calls, shutdown). After every
//! operation the outputs are drained and each one is checked against the model, which keeps
//! its own counts and queues and predicts OxenMQ's admission decisions; then the invariants of
//! §3.1/§3.7 are checked against both.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use lokimq_core::ids::{BatchId, CategoryId, TaggedThreadId, TimerId, WorkerId};
use lokimq_core::sched::{
    CategoryLimits, Completion, InDriver, Offer, QueueLimit, SchedError, SchedJob, SchedOutput,
    Scheduler, SchedulerConfig, ShutdownReport, Target,
};
use lokimq_core::time::{Duration, Instant};
use proptest::prelude::*;

type Payload = u64;

#[derive(Clone, Debug)]
struct Config {
    general: u16,
    batch: Option<u16>,
    reply: Option<u16>,
    categories: Vec<(u16, i32)>,
    tagged: u16,
}

impl Config {
    fn build(&self) -> SchedulerConfig {
        let mut c = SchedulerConfig::new(self.general)
            .with_batch_threads(self.batch)
            .with_reply_threads(self.reply);
        for &(reserved, max_queue) in &self.categories {
            c = c.with_category(CategoryLimits::new(
                reserved,
                QueueLimit::from_oxenmq(max_queue),
            ));
        }
        for i in 0..self.tagged {
            c = c.with_tagged_thread(format!("tagged-{i}"));
        }
        c
    }
}

#[derive(Clone, Debug)]
enum Op {
    Command {
        cat: u16,
        injected: bool,
        /// The connection a network command came from (fair-drop rule), if any.
        source: Option<u8>,
    },
    Reply,
    Job {
        target: u8,
    },
    Batch {
        targets: Vec<u8>,
        completion: u8,
    },
    AddTimer {
        interval_ms: u8,
        squelch: bool,
        target: u8,
    },
    CancelTimer {
        pick: u8,
    },
    Advance {
        ms: u16,
    },
    Finish {
        pick: u16,
    },
    FinishAny {
        worker: u16,
    },
    Shutdown,
}

fn config_strategy() -> impl Strategy<Value = Config> {
    (
        1u16..=4,
        prop::option::of(0u16..=2),
        prop::option::of(0u16..=2),
        prop::collection::vec(
            (0u16..=2, prop::sample::select(vec![-1, 0, 1, 3, 200])),
            1..=3,
        ),
        0u16..=2,
    )
        .prop_map(|(general, batch, reply, categories, tagged)| Config {
            general,
            batch,
            reply,
            categories,
            tagged,
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u16>(), any::<bool>(), prop::option::of(0u8..4))
            .prop_map(|(cat, injected, source)| Op::Command { cat, injected, source }),
        2 => Just(Op::Reply),
        2 => any::<u8>().prop_map(|target| Op::Job { target }),
        2 => (prop::collection::vec(any::<u8>(), 0..5), any::<u8>())
            .prop_map(|(targets, completion)| Op::Batch { targets, completion }),
        1 => (1u8..=50, any::<bool>(), any::<u8>())
            .prop_map(|(interval_ms, squelch, target)| Op::AddTimer { interval_ms, squelch, target }),
        1 => any::<u8>().prop_map(|pick| Op::CancelTimer { pick }),
        2 => (0u16..120).prop_map(|ms| Op::Advance { ms }),
        8 => any::<u16>().prop_map(|pick| Op::Finish { pick }),
        1 => any::<u16>().prop_map(|worker| Op::FinishAny { worker }),
        1 => Just(Op::Shutdown),
    ]
}

/// Maps a random byte to a job target: mostly valid, sometimes in-driver or an unknown thread.
fn target_from(v: u8, tagged: u16) -> Target {
    match v % 16 {
        0 => Target::InDriver,
        1 => Target::Tagged(TaggedThreadId(tagged)),
        x if tagged > 0 && x % 2 == 0 => Target::Tagged(TaggedThreadId(u16::from(x) % tagged)),
        _ => Target::Worker,
    }
}

fn completion_from(v: u8, tagged: u16) -> Completion {
    match v % 9 {
        0 | 1 => Completion::None,
        2 | 3 => Completion::Worker,
        4 | 5 => Completion::InDriver,
        6 => Completion::Tagged(TaggedThreadId(tagged)),
        _ if tagged > 0 => Completion::Tagged(TaggedThreadId(u16::from(v) % tagged)),
        _ => Completion::Worker,
    }
}

/// A batch-pool or tagged-thread job the model can identify (timer firings are tracked apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Job(Payload),
    Part(BatchId, u32),
    Completion(BatchId),
}

impl Item {
    fn of(job: &SchedJob<Payload>) -> Option<Self> {
        match *job {
            SchedJob::Job(p) => Some(Self::Job(p)),
            SchedJob::BatchItem { batch, index } => Some(Self::Part(batch, index)),
            SchedJob::Completion { batch } => Some(Self::Completion(batch)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum What {
    Command(u16),
    Reply,
    Pool(Item),
    PoolTimer(TimerId),
    Tagged(Item),
    TaggedTimer(TimerId),
}

#[derive(Debug)]
struct BatchModel {
    remaining: u32,
    completion: Completion,
    completion_runs: u32,
    completion_finished: bool,
    done: bool,
    abandoned: bool,
}

#[derive(Debug)]
struct TimerModel {
    squelch: bool,
    target: Target,
    cancelled: bool,
    running: u32,
    released: bool,
    gone: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
    Stopped,
}

struct Model {
    cfg: Config,
    general: u16,
    batch_res: u16,
    reply_res: u16,
    max_workers: u16,
    active: u16,
    batch_active: u16,
    reply_active: u16,
    cat_active: Vec<u16>,
    running: BTreeMap<WorkerId, What>,
    cmd_queue: Vec<(u16, Payload, bool)>,
    /// The source of each queued command offered with one, by payload.
    sources: BTreeMap<Payload, u8>,
    batch_queue: VecDeque<Item>,
    reply_queue: VecDeque<Payload>,
    tagged_queues: Vec<VecDeque<Item>>,
    batches: BTreeMap<BatchId, BatchModel>,
    timers: BTreeMap<TimerId, TimerModel>,
    idle: Vec<WorkerId>,
    spawned: u16,
    stopped: BTreeSet<WorkerId>,
    phase: Phase,
    next_payload: Payload,
    immediate: Option<(u16, Payload, bool, WorkerId)>,
    expected_drop: Option<(u16, bool)>,
    now: Instant,
    in_timeout: bool,
}

impl Model {
    fn new(cfg: Config, s: &Scheduler<Payload>) -> Self {
        let general = cfg.general;
        let batch_res = cfg.batch.unwrap_or_else(|| general.div_ceil(2));
        let reply_res = cfg.reply.unwrap_or_else(|| general.div_ceil(8));
        let max_workers =
            general + batch_res + reply_res + cfg.categories.iter().map(|c| c.0).sum::<u16>();
        assert_eq!(s.max_workers(), max_workers);
        Self {
            general,
            batch_res,
            reply_res,
            max_workers,
            active: 0,
            batch_active: 0,
            reply_active: 0,
            cat_active: vec![0; cfg.categories.len()],
            running: BTreeMap::new(),
            cmd_queue: Vec::new(),
            sources: BTreeMap::new(),
            batch_queue: VecDeque::new(),
            reply_queue: VecDeque::new(),
            tagged_queues: vec![VecDeque::new(); usize::from(cfg.tagged)],
            batches: BTreeMap::new(),
            timers: BTreeMap::new(),
            idle: Vec::new(),
            spawned: 0,
            stopped: BTreeSet::new(),
            phase: Phase::Running,
            next_payload: 0,
            immediate: None,
            expected_drop: None,
            now: Instant::ZERO,
            in_timeout: false,
            cfg,
        }
    }

    fn payload(&mut self) -> Payload {
        self.next_payload += 1;
        self.next_payload
    }

    fn tagged_worker(&self, t: u16) -> WorkerId {
        WorkerId(self.max_workers + t)
    }

    fn cat_queued(&self, c: u16) -> usize {
        self.cmd_queue.iter().filter(|q| q.0 == c).count()
    }

    /// The fair-drop rule's victim for a command of `source` at `c`'s full queue: the index of
    /// the newest queued command of the source holding the most of the queue (ties: the
    /// highest source), if it holds at least two more than `source`.
    fn fair_victim(&self, c: u16, source: u8) -> Option<usize> {
        let mut counts = BTreeMap::<u8, usize>::new();
        for q in self.cmd_queue.iter().filter(|q| q.0 == c) {
            if let Some(&src) = self.sources.get(&q.1) {
                *counts.entry(src).or_default() += 1;
            }
        }
        let (&heavy, &load) = counts.iter().max_by_key(|&(src, n)| (*n, *src))?;
        let mine = counts.get(&source).copied().unwrap_or(0);
        if heavy == source || mine + 2 > load {
            return None;
        }
        self.cmd_queue
            .iter()
            .rposition(|q| q.0 == c && self.sources.get(&q.1) == Some(&heavy))
    }

    fn pool_may_start(&self, pool_active: u16, reserved: u16) -> bool {
        self.active < self.max_workers && (pool_active < reserved || self.active < self.general)
    }

    fn command_may_start(&self, c: u16) -> bool {
        let reserved = self.cfg.categories[usize::from(c)].0;
        self.active < self.max_workers
            && (self.cat_active[usize::from(c)] < reserved || self.active < self.general)
    }

    fn check_target(&self, t: Target) -> Result<(), SchedError> {
        match t {
            Target::Tagged(id) if id.get() >= self.cfg.tagged => {
                Err(SchedError::UnknownTaggedThread(id))
            }
            _ => Ok(()),
        }
    }

    fn push_item(&mut self, target: Target, item: Item) {
        match target {
            Target::Tagged(t) => self.tagged_queues[t.index()].push_back(item),
            _ => self.batch_queue.push_back(item),
        }
    }

    /// A worker slot is being handed a job: LIFO reuse, else the next new slot.
    fn take_slot(&mut self, worker: WorkerId) {
        if let Some(&top) = self.idle.last() {
            assert_eq!(worker, top, "idle workers are reused LIFO");
            self.idle.pop();
        } else {
            assert_eq!(worker, WorkerId(self.spawned), "slots spawn in order");
            self.spawned += 1;
        }
        self.active += 1;
    }

    fn on_output(&mut self, out: SchedOutput<Payload>) {
        assert_ne!(self.phase, Phase::Stopped, "output after Stopped: {out:?}");
        match out {
            SchedOutput::RunJob { worker, job } => self.on_run(worker, job),
            SchedOutput::RunInDriver(InDriver::Completion { batch }) => {
                assert_eq!(self.phase, Phase::Running);
                let b = self.batches.get_mut(&batch).expect("known batch");
                assert_eq!(b.remaining, 0);
                assert_eq!(b.completion, Completion::InDriver);
                assert_eq!(b.completion_runs, 0, "completion runs once");
                b.completion_runs += 1;
                b.completion_finished = true;
            }
            SchedOutput::RunInDriver(InDriver::Timer { timer }) => {
                assert_eq!(self.phase, Phase::Running);
                assert!(
                    self.in_timeout,
                    "in-driver firings only from handle_timeout"
                );
                let t = &self.timers[&timer];
                assert_eq!(t.target, Target::InDriver);
                assert!(!t.cancelled);
            }
            SchedOutput::BatchDone { batch } => {
                assert_eq!(self.phase, Phase::Running);
                let b = self.batches.get_mut(&batch).expect("known batch");
                assert!(!b.done, "BatchDone twice");
                assert_eq!(b.remaining, 0);
                if b.completion == Completion::None {
                    assert_eq!(b.completion_runs, 0);
                } else {
                    assert!(b.completion_finished && b.completion_runs == 1);
                }
                b.done = true;
            }
            SchedOutput::TimerReleased { timer } => {
                assert_eq!(self.phase, Phase::Running);
                let t = self.timers.get_mut(&timer).expect("known timer");
                assert!(t.cancelled && t.running == 0 && !t.released);
                t.released = true;
            }
            SchedOutput::Dropped {
                category, injected, ..
            } => {
                assert_eq!(self.expected_drop.take(), Some((category.get(), injected)));
            }
            SchedOutput::StopWorker { worker } => {
                assert_eq!(self.phase, Phase::ShuttingDown);
                assert!(!self.running.contains_key(&worker));
                assert!(
                    worker.get() < self.spawned
                        || (worker.get() >= self.max_workers
                            && worker.get() < self.max_workers + self.cfg.tagged),
                    "StopWorker only for spawned slots and tagged threads"
                );
                assert!(self.stopped.insert(worker), "StopWorker twice");
            }
            SchedOutput::Stopped => {
                assert_eq!(self.phase, Phase::ShuttingDown);
                assert!(self.running.is_empty());
                assert_eq!(
                    self.stopped.len(),
                    usize::from(self.spawned) + usize::from(self.cfg.tagged)
                );
                self.phase = Phase::Stopped;
            }
            other => panic!("unexpected output {other:?}"),
        }
    }

    /// A command or task starts on `worker`: the one just offered, or the queued one OxenMQ's
    /// in-order pass would pick.
    fn start_command(&mut self, worker: WorkerId, c: u16, job: Payload, injected: bool) -> What {
        assert!(self.command_may_start(c), "command admission");
        if let Some(offered) = self.immediate.take() {
            assert_eq!((c, job, injected, worker), offered, "the offered command");
        } else {
            // From the queue: OxenMQ's in-order pass starts the oldest runnable one,
            // and only once no batch or reply job can start.
            assert!(
                self.batch_queue.is_empty()
                    || !self.pool_may_start(self.batch_active, self.batch_res)
            );
            assert!(
                self.reply_queue.is_empty()
                    || !self.pool_may_start(self.reply_active, self.reply_res)
            );
            let first = self
                .cmd_queue
                .iter()
                .position(|q| self.command_may_start(q.0))
                .expect("a runnable queued command");
            let queued = self.cmd_queue.remove(first);
            self.sources.remove(&queued.1);
            assert_eq!(queued, (c, job, injected), "oldest runnable command first");
        }
        self.cat_active[usize::from(c)] += 1;
        What::Command(c)
    }

    fn on_run(&mut self, worker: WorkerId, job: SchedJob<Payload>) {
        assert_eq!(
            self.phase,
            Phase::Running,
            "nothing dispatched after shutdown"
        );
        assert!(
            !self.running.contains_key(&worker),
            "{worker:?} already busy"
        );
        let what = if worker.get() >= self.max_workers {
            let t = worker.get() - self.max_workers;
            assert!(t < self.cfg.tagged);
            if let SchedJob::Timer { timer } = job {
                let tm = self.timers.get_mut(&timer).expect("known timer");
                assert_eq!(tm.target, Target::Tagged(TaggedThreadId(t)));
                assert!(!tm.cancelled);
                assert!(!tm.squelch || tm.running == 0, "squelch");
                tm.running += 1;
                What::TaggedTimer(timer)
            } else {
                let item = Item::of(&job).expect("tagged threads run pool jobs only");
                assert_eq!(
                    self.tagged_queues[usize::from(t)].pop_front(),
                    Some(item),
                    "tagged FIFO"
                );
                What::Tagged(item)
            }
        } else {
            let what = match job {
                SchedJob::Command { category, job } => {
                    self.start_command(worker, category.get(), job, false)
                }
                SchedJob::Task { category, job } => {
                    self.start_command(worker, category.get(), job, true)
                }
                SchedJob::Reply(p) => {
                    assert!(self.pool_may_start(self.reply_active, self.reply_res));
                    assert!(
                        self.batch_queue.is_empty()
                            || !self.pool_may_start(self.batch_active, self.batch_res)
                    );
                    assert_eq!(self.reply_queue.pop_front(), Some(p), "reply FIFO");
                    self.reply_active += 1;
                    What::Reply
                }
                SchedJob::Timer { timer } => {
                    assert!(self.pool_may_start(self.batch_active, self.batch_res));
                    let tm = self.timers.get_mut(&timer).expect("known timer");
                    assert_eq!(tm.target, Target::Worker);
                    assert!(!tm.cancelled);
                    assert!(!tm.squelch || tm.running == 0, "squelch");
                    tm.running += 1;
                    self.batch_active += 1;
                    What::PoolTimer(timer)
                }
                ref other => {
                    assert!(self.pool_may_start(self.batch_active, self.batch_res));
                    let item = Item::of(other).expect("pool job");
                    assert_eq!(self.batch_queue.pop_front(), Some(item), "batch FIFO");
                    self.batch_active += 1;
                    What::Pool(item)
                }
            };
            self.take_slot(worker);
            what
        };
        if let What::Pool(Item::Part(b, _)) | What::Tagged(Item::Part(b, _)) = what {
            assert!(self.batches[&b].remaining > 0);
        }
        if let What::Pool(Item::Completion(b)) | What::Tagged(Item::Completion(b)) = what {
            let bm = self.batches.get_mut(&b).expect("known batch");
            assert_eq!(bm.remaining, 0);
            assert_eq!(bm.completion_runs, 0, "completion runs once");
            bm.completion_runs += 1;
        }
        self.running.insert(worker, what);
    }

    /// Applies the effects of `job_finished(worker)` before its outputs are read.
    fn finish(&mut self, worker: WorkerId) {
        let what = self.running.remove(&worker).expect("running");
        let live = self.phase == Phase::Running;
        let item = match what {
            What::Command(c) => {
                self.cat_active[usize::from(c)] -= 1;
                None
            }
            What::Reply => {
                self.reply_active -= 1;
                None
            }
            What::Pool(item) => {
                self.batch_active -= 1;
                Some(item)
            }
            What::Tagged(item) => Some(item),
            What::PoolTimer(t) | What::TaggedTimer(t) => {
                if matches!(what, What::PoolTimer(_)) {
                    self.batch_active -= 1;
                }
                if let Some(tm) = self.timers.get_mut(&t) {
                    tm.running -= 1;
                }
                None
            }
        };
        if worker.get() < self.max_workers {
            self.active -= 1;
            if live {
                self.idle.push(worker);
            }
        }
        match item {
            Some(Item::Part(b, _)) => {
                let bm = self.batches.get_mut(&b).expect("known batch");
                bm.remaining -= 1;
                if bm.remaining == 0 && live {
                    match bm.completion {
                        Completion::Worker => self.batch_queue.push_back(Item::Completion(b)),
                        Completion::Tagged(t) => {
                            self.tagged_queues[t.index()].push_back(Item::Completion(b));
                        }
                        _ => {}
                    }
                }
            }
            Some(Item::Completion(b)) => {
                self.batches
                    .get_mut(&b)
                    .expect("known batch")
                    .completion_finished = true;
            }
            _ => {}
        }
    }

    /// Events the scheduler owes by now.
    fn check_owed(&self) {
        if self.phase == Phase::Running {
            for (id, b) in &self.batches {
                let finished =
                    b.remaining == 0 && (b.completion == Completion::None || b.completion_finished);
                assert_eq!(
                    finished, b.done,
                    "{id:?} {b:?}: BatchDone exactly when finished"
                );
            }
            for (id, t) in &self.timers {
                if t.cancelled && t.running == 0 {
                    assert!(t.released, "{id:?} owed TimerReleased");
                }
            }
        } else {
            for w in 0..self.spawned {
                let w = WorkerId(w);
                assert_eq!(self.running.contains_key(&w), !self.stopped.contains(&w));
            }
            for t in 0..self.cfg.tagged {
                let w = self.tagged_worker(t);
                assert_eq!(self.running.contains_key(&w), !self.stopped.contains(&w));
            }
            assert_eq!(self.running.is_empty(), self.phase == Phase::Stopped);
        }
    }
}

fn drain_into(s: &mut Scheduler<Payload>, m: &mut Model) {
    while let Some(out) = s.poll_output() {
        m.on_output(out);
    }
    assert!(s.poll_output().is_none());
    assert!(m.immediate.is_none(), "a Started offer had no RunJob");
    assert!(
        m.expected_drop.is_none(),
        "a Dropped offer had no Dropped output"
    );
}

fn check_invariants(s: &Scheduler<Payload>, m: &Model) {
    let st = s.stats();
    assert_eq!(st.active, m.active);
    assert!(st.active <= st.max_workers);
    assert_eq!(st.batch_active, m.batch_active);
    assert_eq!(st.reply_active, m.reply_active);
    assert_eq!(st.spawned, m.spawned);
    assert_eq!(st.reply_queued, m.reply_queue.len());
    assert_eq!(st.commands_queued, m.cmd_queue.len());
    // Timer firings are the only batch-pool jobs the model does not list.
    assert!(st.batch_queued >= m.batch_queue.len());
    let tagged_listed: usize = m.tagged_queues.iter().map(VecDeque::len).sum();
    assert!(st.tagged_queued >= tagged_listed);
    for (i, c) in st.categories.iter().enumerate() {
        assert_eq!(c.active, m.cat_active[i]);
        assert_eq!(c.queued, m.cat_queued(i as u16));
        assert!(c.active <= c.reserved_threads + st.general_workers);
        if let Some(max) = c.max_queue.limit() {
            assert!(c.queued <= max as usize, "queued over max_queue");
        }
    }
    for &w in m.running.keys() {
        assert!(s.is_busy(w));
    }
    if m.phase == Phase::Running {
        assert_eq!(usize::from(st.idle), m.idle.len());
        // Fixed point: nothing queued could start.
        let pool = |a: u16, r: u16| {
            st.active < st.max_workers && (a < r || st.active < st.general_workers)
        };
        assert!(st.batch_queued == 0 || !pool(st.batch_active, st.batch_reserved));
        assert!(st.reply_queued == 0 || !pool(st.reply_active, st.reply_reserved));
        for c in &st.categories {
            assert!(
                c.queued == 0
                    || st.active >= st.max_workers
                    || (c.active >= c.reserved_threads && st.active >= st.general_workers)
            );
        }
        for t in 0..m.cfg.tagged {
            let queued = s.tagged_queued(TaggedThreadId(t)).unwrap();
            assert!(queued == 0 || m.running.contains_key(&m.tagged_worker(t)));
        }
        if let Some(at) = s.poll_timeout() {
            assert!(
                at > m.now || m.now == Instant::MAX,
                "due timers were handled"
            );
        }
    } else {
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(st.commands_queued + st.batch_queued + st.reply_queued, 0);
        assert_eq!(s.is_stopped(), m.phase == Phase::Stopped);
    }
    m.check_owed();
}

fn apply(s: &mut Scheduler<Payload>, m: &mut Model, op: &Op) {
    let running = m.phase == Phase::Running;
    let n_tagged = m.cfg.tagged;
    match op {
        Op::Command {
            cat,
            injected,
            source,
        } => {
            let n = m.cfg.categories.len() as u16;
            // One in eight offers names a category that does not exist.
            let c = if cat % 8 == 7 { n + cat % 3 } else { cat % n };
            let p = m.payload();
            let source = source.filter(|_| !*injected);
            let res = match (*injected, source) {
                (true, _) => s.inject_task(CategoryId(c), p),
                (false, Some(src)) => s.offer_command_from(CategoryId(c), u64::from(src), p),
                (false, None) => s.offer_command(CategoryId(c), p),
            };
            if !running {
                assert_eq!(res, Err(SchedError::ShuttingDown));
            } else if c >= n {
                assert_eq!(res, Err(SchedError::UnknownCategory(CategoryId(c))));
            } else if m.command_may_start(c) {
                let Ok(Offer::Started(w)) = res else {
                    panic!("expected Started, got {res:?}")
                };
                m.immediate = Some((c, p, *injected, w));
            } else if m.cfg.categories[usize::from(c)].1 >= 0
                && m.cat_queued(c) >= m.cfg.categories[usize::from(c)].1 as usize
            {
                match source.and_then(|src| m.fair_victim(c, src)) {
                    Some(at) => {
                        // The fair-drop rule: the heaviest source's newest command goes.
                        let victim = m.cmd_queue.remove(at);
                        m.sources.remove(&victim.1);
                        assert_eq!(res, Ok(Offer::Queued));
                        m.expected_drop = Some((c, victim.2));
                        m.cmd_queue.push((c, p, false));
                        m.sources.insert(p, source.unwrap_or_default());
                    }
                    None => {
                        assert_eq!(res, Ok(Offer::Dropped));
                        m.expected_drop = Some((c, *injected));
                    }
                }
            } else {
                assert_eq!(res, Ok(Offer::Queued));
                m.cmd_queue.push((c, p, *injected));
                if let Some(src) = source {
                    m.sources.insert(p, src);
                }
            }
        }
        Op::Reply => {
            let p = m.payload();
            let res = s.submit_reply_job(p);
            if running {
                assert_eq!(res, Ok(()));
                m.reply_queue.push_back(p);
            } else {
                assert_eq!(res, Err(SchedError::ShuttingDown));
            }
        }
        Op::Job { target } => {
            let target = target_from(*target, n_tagged);
            let p = m.payload();
            let res = s.submit_job(p, target);
            let want = if !running {
                Err(SchedError::ShuttingDown)
            } else if target == Target::InDriver {
                Err(SchedError::InDriverJob)
            } else {
                m.check_target(target)
            };
            assert_eq!(res, want);
            if res.is_ok() {
                m.push_item(target, Item::Job(p));
            }
        }
        Op::Batch {
            targets,
            completion,
        } => {
            let jobs: Vec<Target> = targets.iter().map(|&t| target_from(t, n_tagged)).collect();
            let completion = completion_from(*completion, n_tagged);
            let res = s.submit_batch(&jobs, completion);
            let mut want = Ok(());
            if !running {
                want = Err(SchedError::ShuttingDown);
            } else if jobs.is_empty() {
                want = Err(SchedError::EmptyBatch);
            } else {
                for &t in &jobs {
                    if t == Target::InDriver {
                        want = Err(SchedError::InDriverBatchJob);
                        break;
                    }
                    if let Err(e) = m.check_target(t) {
                        want = Err(e);
                        break;
                    }
                }
                if want.is_ok() {
                    if let Completion::Tagged(t) = completion {
                        want = m.check_target(Target::Tagged(t));
                    }
                }
            }
            match (res, want) {
                (Ok(batch), Ok(())) => {
                    assert!(m.batches.keys().all(|&b| b < batch), "batch ids increase");
                    m.batches.insert(
                        batch,
                        BatchModel {
                            remaining: jobs.len() as u32,
                            completion,
                            completion_runs: 0,
                            completion_finished: false,
                            done: false,
                            abandoned: false,
                        },
                    );
                    for (i, &t) in jobs.iter().enumerate() {
                        m.push_item(t, Item::Part(batch, i as u32));
                    }
                }
                (Err(got), Err(want)) => assert_eq!(got, want),
                (got, want) => panic!("submit_batch: got {got:?}, want {want:?}"),
            }
        }
        Op::AddTimer {
            interval_ms,
            squelch,
            target,
        } => {
            let target = target_from(*target, n_tagged);
            let res = s.add_timer(
                m.now,
                Duration::from_millis(u64::from(*interval_ms)),
                *squelch,
                target,
            );
            let want = if running {
                m.check_target(target)
            } else {
                Err(SchedError::ShuttingDown)
            };
            match (res, want) {
                (Ok(id), Ok(())) => {
                    assert!(m.timers.keys().all(|&t| t < id), "timer ids increase");
                    m.timers.insert(
                        id,
                        TimerModel {
                            squelch: *squelch,
                            target,
                            cancelled: false,
                            running: 0,
                            released: false,
                            gone: false,
                        },
                    );
                }
                (Err(got), Err(want)) => assert_eq!(got, want),
                (got, want) => panic!("add_timer: got {got:?}, want {want:?}"),
            }
        }
        Op::CancelTimer { pick } => {
            let ids: Vec<TimerId> = m.timers.keys().copied().collect();
            let id = if ids.is_empty() || usize::from(*pick) >= ids.len() * 2 {
                TimerId(10_000 + u64::from(*pick))
            } else {
                ids[usize::from(*pick) % ids.len()]
            };
            let live = m.timers.get(&id).is_some_and(|t| !t.cancelled && !t.gone);
            assert_eq!(s.cancel_timer(id), live);
            if live {
                m.timers.get_mut(&id).unwrap().cancelled = true;
            }
        }
        Op::Advance { ms } => {
            m.now += Duration::from_millis(u64::from(*ms));
            m.in_timeout = true;
            s.handle_timeout(m.now);
        }
        Op::Finish { pick } => {
            if m.running.is_empty() {
                return;
            }
            let workers: Vec<WorkerId> = m.running.keys().copied().collect();
            let w = workers[usize::from(*pick) % workers.len()];
            m.finish(w);
            assert_eq!(s.job_finished(w), Ok(()));
        }
        Op::FinishAny { worker } => {
            let limit = m.max_workers + n_tagged + 3;
            let w = WorkerId(worker % limit);
            if m.running.contains_key(&w) {
                m.finish(w);
                assert_eq!(s.job_finished(w), Ok(()));
            } else if w.get() < m.max_workers + n_tagged {
                assert_eq!(s.job_finished(w), Err(SchedError::WorkerIdle(w)));
            } else {
                assert_eq!(s.job_finished(w), Err(SchedError::UnknownWorker(w)));
            }
        }
        Op::Shutdown => {
            let report = s.shutdown();
            if !running {
                assert_eq!(report, ShutdownReport::default());
                return;
            }
            assert_eq!(report.commands, m.cmd_queue.len());
            assert_eq!(report.reply_jobs, m.reply_queue.len());
            assert!(report.batch_jobs >= m.batch_queue.len());
            assert!(report.tagged_jobs >= m.tagged_queues.iter().map(VecDeque::len).sum());
            assert_eq!(report.running, m.running.len());
            assert_eq!(
                report.batches,
                m.batches.values().filter(|b| !b.done).count()
            );
            assert_eq!(
                report.timers,
                m.timers
                    .values()
                    .filter(|t| !t.cancelled && !t.gone)
                    .count()
            );
            m.phase = Phase::ShuttingDown;
            m.cmd_queue.clear();
            m.batch_queue.clear();
            m.reply_queue.clear();
            m.tagged_queues.iter_mut().for_each(VecDeque::clear);
            m.idle.clear();
            for b in m.batches.values_mut().filter(|b| !b.done) {
                b.abandoned = true;
            }
            for t in m.timers.values_mut() {
                t.gone = true;
            }
        }
    }
}

fn run(cfg: &Config, ops: &[Op]) -> Vec<String> {
    let mut s = Scheduler::new(cfg.build()).expect("valid config");
    let mut m = Model::new(cfg.clone(), &s);
    let mut log = Vec::new();
    for op in ops {
        apply(&mut s, &mut m, op);
        while let Some(out) = s.poll_output() {
            log.push(format!("{out:?}"));
            m.on_output(out);
        }
        drain_into(&mut s, &mut m);
        m.in_timeout = false;
        check_invariants(&s, &m);
    }
    // Settle: finish everything still running (no time passes) until nothing runs.
    let mut rounds = 0;
    while let Some(&w) = m.running.keys().next() {
        rounds += 1;
        assert!(rounds < 100_000, "did not settle");
        m.finish(w);
        s.job_finished(w).unwrap();
        drain_into(&mut s, &mut m);
        check_invariants(&s, &m);
    }
    if m.phase == Phase::Running {
        // Every queue drained: nothing waits once every worker is idle.
        let st = s.stats();
        assert_eq!(
            st.commands_queued + st.batch_queued + st.reply_queued + st.tagged_queued,
            0
        );
        assert!(
            m.batches.values().all(|b| b.done && !b.abandoned),
            "every batch completed"
        );
        apply(&mut s, &mut m, &Op::Shutdown);
        drain_into(&mut s, &mut m);
        check_invariants(&s, &m);
    }
    assert_eq!(m.phase, Phase::Stopped);
    assert!(s.is_stopped());
    log
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sched_random_operations_keep_every_invariant(
        cfg in config_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..160),
    ) {
        run(&cfg, &ops);
    }

    #[test]
    fn sched_same_inputs_give_same_outputs(
        cfg in config_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..80),
    ) {
        prop_assert_eq!(run(&cfg, &ops), run(&cfg, &ops));
    }
}

#[test]
fn sched_model_agrees_on_the_readme_scenario() {
    let cfg = Config {
        general: 4,
        batch: None,
        reply: None,
        categories: vec![(2, 200), (0, 200)],
        tagged: 0,
    };
    let b = |_| Op::Command {
        cat: 1,
        injected: false,
        source: None,
    };
    let a = |_| Op::Command {
        cat: 0,
        injected: false,
        source: None,
    };
    let mut ops: Vec<Op> = (0..6).map(b).collect();
    ops.extend((0..3).map(a));
    ops.extend((0..12).map(|pick| Op::Finish { pick }));
    let log = run(&cfg, &ops);
    let started = log.iter().filter(|l| l.starts_with("RunJob")).count();
    assert_eq!(started, 9);
}
