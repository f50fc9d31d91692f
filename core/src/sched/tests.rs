//! Unit tests of the scheduler: OxenMQ's README scenarios, the admission formulas, batches,
//! tagged threads, timers, shutdown and misuse.

use super::*;
use alloc::string::ToString;
use alloc::vec;

const A: CategoryId = CategoryId(0);
const B: CategoryId = CategoryId(1);
const T0: TaggedThreadId = TaggedThreadId(0);
const T1: TaggedThreadId = TaggedThreadId(1);

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn drain<J>(s: &mut Scheduler<J>) -> Vec<SchedOutput<J>> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        out.push(o);
    }
    out
}

/// The `RunJob`s of a drain, as (worker, job).
fn runs<J>(outs: Vec<SchedOutput<J>>) -> Vec<(WorkerId, SchedJob<J>)> {
    outs.into_iter()
        .filter_map(|o| match o {
            SchedOutput::RunJob { worker, job } => Some((worker, job)),
            _ => None,
        })
        .collect()
}

/// Payloads of the commands and tasks started in a drain, with their workers.
fn started_commands<J>(outs: Vec<SchedOutput<J>>) -> Vec<(WorkerId, J)> {
    runs(outs)
        .into_iter()
        .filter_map(|(w, job)| match job {
            SchedJob::Command { job, .. } | SchedJob::Task { job, .. } => Some((w, job)),
            _ => None,
        })
        .collect()
}

fn started(o: Offer) -> WorkerId {
    match o {
        Offer::Started(w) => w,
        other => panic!("expected Started, got {other:?}"),
    }
}

/// OxenMQ README setup: category A reserves 2 threads, B none, 4 general workers.
fn readme() -> Scheduler<&'static str> {
    Scheduler::new(
        SchedulerConfig::new(4)
            .with_category(CategoryLimits::new(2, QueueLimit::OXENMQ_DEFAULT))
            .with_category(CategoryLimits::new(0, QueueLimit::OXENMQ_DEFAULT)),
    )
    .unwrap()
}

/// Offers `labels` in order ("A…" to category A, "B…" to B); returns the offers.
fn offer_all(s: &mut Scheduler<&'static str>, labels: &[&'static str]) -> Vec<Offer> {
    labels
        .iter()
        .map(|&l| {
            let cat = if l.starts_with('A') { A } else { B };
            s.offer_command(cat, l).unwrap()
        })
        .collect()
}

fn pattern(offers: &[Offer]) -> String {
    offers
        .iter()
        .map(|o| match o {
            Offer::Started(_) => 'S',
            Offer::Queued => 'Q',
            Offer::Dropped => 'D',
        })
        .collect()
}

/// Checks the invariants every state between inputs must satisfy.
fn check_invariants<J>(s: &Scheduler<J>) {
    let st = s.stats();
    assert!(st.active <= st.max_workers, "{st:?}");
    assert_eq!(
        st.active,
        st.batch_active + st.reply_active + st.categories.iter().map(|c| c.active).sum::<u16>()
    );
    assert!(st.spawned <= st.max_workers);
    for c in &st.categories {
        assert!(c.active <= c.reserved_threads + st.general_workers);
        if let Some(max) = c.max_queue.limit() {
            assert!(c.queued <= max as usize, "{c:?}");
        }
    }
    if !s.is_shutting_down() {
        assert_eq!(st.idle + st.active, st.spawned);
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
    }
}

// ----- configuration -----

#[test]
fn zero_general_workers_is_rejected_with_oxenmq_text() {
    let err = Scheduler::<()>::new(SchedulerConfig::new(0)).unwrap_err();
    assert_eq!(err, SchedError::InvalidGeneralThreads { value: 0 });
    assert_eq!(
        err.to_string(),
        "Invalid set_general_threads() value 0: general threads must be > 0"
    );
}

#[test]
fn batch_and_reply_reservations_default_to_rounded_up_fractions() {
    for (general, batch, reply) in [
        (1, 1, 1),
        (4, 2, 1),
        (8, 4, 1),
        (9, 5, 2),
        (16, 8, 2),
        (17, 9, 3),
    ] {
        let s = Scheduler::<()>::new(SchedulerConfig::new(general)).unwrap();
        assert_eq!(
            (s.batch_reserved(), s.reply_reserved()),
            (batch, reply),
            "general {general}"
        );
        assert_eq!(s.max_workers(), general + batch + reply);
    }
}

#[test]
fn max_workers_sums_every_reservation() {
    let s = Scheduler::<()>::new(
        SchedulerConfig::new(3)
            .with_batch_threads(Some(0))
            .with_reply_threads(Some(5))
            .with_category(CategoryLimits::new(2, QueueLimit::At(10)))
            .with_category(CategoryLimits::default())
            .with_category(CategoryLimits::new(7, QueueLimit::Unlimited)),
    )
    .unwrap();
    assert_eq!(s.max_workers(), 3 + 5 + 2 + 7);
    assert_eq!(s.category_count(), 3);
    assert_eq!(
        s.category_limits(CategoryId(1)),
        Some(CategoryLimits::new(0, QueueLimit::At(200)))
    );
    assert_eq!(s.category_limits(CategoryId(3)), None);
}

#[test]
fn bad_tagged_thread_names_are_rejected_with_oxenmq_text() {
    for name in ["", "_proxy", "a\0b"] {
        let err =
            Scheduler::<()>::new(SchedulerConfig::new(1).with_tagged_thread(name)).unwrap_err();
        assert_eq!(err, SchedError::InvalidTaggedThreadName(name.into()));
        assert_eq!(
            err.to_string(),
            alloc::format!("Invalid tagged thread name `{name}'")
        );
    }
    for name in ["proxy", "_proxy_", "x"] {
        assert!(Scheduler::<()>::new(SchedulerConfig::new(1).with_tagged_thread(name)).is_ok());
    }
}

#[test]
fn worker_ids_must_fit_in_sixteen_bits() {
    let err = Scheduler::<()>::new(SchedulerConfig::new(u16::MAX)).unwrap_err();
    assert!(matches!(err, SchedError::TooManyWorkers(_)), "{err:?}");
    // Tagged threads need ids above the worker slots too.
    let err = Scheduler::<()>::new(
        SchedulerConfig::new(u16::MAX - 2)
            .with_batch_threads(Some(0))
            .with_reply_threads(Some(0))
            .with_tagged_thread("a")
            .with_tagged_thread("b")
            .with_tagged_thread("c"),
    )
    .unwrap_err();
    assert_eq!(err, SchedError::TooManyWorkers(65_536));
    assert!(
        Scheduler::<()>::new(
            SchedulerConfig::new(u16::MAX - 2)
                .with_batch_threads(Some(0))
                .with_reply_threads(Some(0))
                .with_tagged_thread("a")
                .with_tagged_thread("b"),
        )
        .is_ok()
    );
}

#[test]
fn tagged_threads_get_ids_after_the_worker_slots() {
    let s = Scheduler::<()>::new(
        SchedulerConfig::new(2)
            .with_tagged_thread("db")
            .with_tagged_thread("log"),
    )
    .unwrap();
    assert_eq!(s.max_workers(), 4);
    assert_eq!(s.tagged_worker(T0), Some(WorkerId(4)));
    assert_eq!(s.tagged_worker(T1), Some(WorkerId(5)));
    assert_eq!(s.tagged_worker(TaggedThreadId(2)), None);
    assert_eq!(s.tagged_thread_of(WorkerId(5)), Some(T1));
    assert_eq!(s.tagged_thread_of(WorkerId(3)), None);
    assert_eq!(s.tagged_thread_of(WorkerId(6)), None);
    assert_eq!(s.tagged_thread_name(T0), Some("db"));
    assert_eq!(s.tagged_thread_count(), 2);
}

// ----- README scenarios (§3.1) -----

#[test]
fn readme_aabbbb_runs_four_and_queues_the_third_b() {
    let mut s = readme();
    let offers = offer_all(&mut s, &["A1", "A2", "B1", "B2", "B3", "B4"]);
    assert_eq!(pattern(&offers), "SSSSQQ");
    assert_eq!(s.active(), 4);
    assert_eq!(s.category_queued(B), Some(2));
    assert_eq!(s.category_queued(A), Some(0));
    let ran = started_commands(drain(&mut s));
    assert_eq!(
        ran,
        vec![
            (WorkerId(0), "A1"),
            (WorkerId(1), "A2"),
            (WorkerId(2), "B1"),
            (WorkerId(3), "B2")
        ]
    );
    // A finishing frees general capacity: B3 then (after another) B4, in order.
    s.job_finished(WorkerId(0)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(0), "B3")]);
    s.job_finished(WorkerId(1)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(1), "B4")]);
    assert_eq!(s.commands_queued(), 0);
    check_invariants(&s);
}

#[test]
fn readme_aabbaa_never_exceeds_four() {
    let mut s = readme();
    let offers = offer_all(&mut s, &["A1", "A2", "B1", "B2", "A3", "A4"]);
    assert_eq!(pattern(&offers), "SSSSQQ");
    assert_eq!(s.active(), 4);
    assert_eq!(s.category_queued(A), Some(2));
    drain(&mut s);
    // A B finishing frees a general slot; the oldest queued command (A3) takes it.
    s.job_finished(WorkerId(2)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(2), "A3")]);
    assert_eq!(s.active(), 4);
    assert_eq!(s.category_active(A), Some(3));
    check_invariants(&s);
}

#[test]
fn readme_bbbaaa_runs_five_and_queues_the_third_a() {
    let mut s = readme();
    let offers = offer_all(&mut s, &["B1", "B2", "B3", "A1", "A2", "A3"]);
    assert_eq!(pattern(&offers), "SSSSSQ");
    assert_eq!(s.active(), 5);
    assert_eq!(s.category_active(A), Some(2));
    assert_eq!(s.category_queued(A), Some(1));
    drain(&mut s);
    // A B finishing leaves active = 4 = general and A has no free reserved slot: still queued.
    s.job_finished(WorkerId(0)).unwrap();
    assert!(drain(&mut s).is_empty());
    // An A finishing frees one of A's reserved slots.
    s.job_finished(WorkerId(3)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(3), "A3")]);
    check_invariants(&s);
}

#[test]
fn readme_bbbbbbaaa_runs_six_and_queued_jobs_resume_in_order() {
    let mut s = readme();
    let offers = offer_all(
        &mut s,
        &["B1", "B2", "B3", "B4", "B5", "B6", "A1", "A2", "A3"],
    );
    assert_eq!(pattern(&offers), "SSSSQQSSQ");
    assert_eq!(s.active(), 6);
    assert_eq!(s.category_queued(B), Some(2));
    assert_eq!(s.category_queued(A), Some(1));
    let ran = started_commands(drain(&mut s));
    let labels: Vec<_> = ran.iter().map(|&(_, l)| l).collect();
    assert_eq!(labels, ["B1", "B2", "B3", "B4", "A1", "A2"]);
    assert_eq!(started(offers[6]), WorkerId(4));

    // A1 finishes: A3 overtakes the older B5 and B6 (its reserved slot is free).
    s.job_finished(WorkerId(4)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(4), "A3")]);
    // Two Bs finish: active goes 5 then 4, never below general, so B5 waits.
    s.job_finished(WorkerId(0)).unwrap();
    s.job_finished(WorkerId(1)).unwrap();
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.active(), 4);
    // A third B finishes: active 3 < general, B5 starts on the most recently freed slot.
    s.job_finished(WorkerId(2)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(2), "B5")]);
    s.job_finished(WorkerId(3)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(3), "B6")]);
    assert_eq!(s.commands_queued(), 0);
    check_invariants(&s);
}

#[test]
fn reserved_threads_are_never_starved_by_general_traffic() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(4)
            .with_category(CategoryLimits::new(2, QueueLimit::Unlimited))
            .with_category(CategoryLimits::new(0, QueueLimit::Unlimited)),
    )
    .unwrap();
    for i in 0..1000 {
        let _ = s.offer_command(B, i).unwrap();
    }
    assert_eq!(s.category_queued(B), Some(996));
    // A still starts at once, twice, despite 996 older B commands.
    assert!(matches!(
        s.offer_command(A, 5000).unwrap(),
        Offer::Started(_)
    ));
    assert!(matches!(
        s.offer_command(A, 5001).unwrap(),
        Offer::Started(_)
    ));
    assert_eq!(s.offer_command(A, 5002).unwrap(), Offer::Queued);
    drain(&mut s);
    // When an A finishes, the queued A gets the reserved slot before any of the older Bs.
    s.job_finished(WorkerId(4)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(4), 5002)]);
    // Reserved-slot jobs count in `active`: while the As run, a B finishing frees nothing.
    s.job_finished(WorkerId(0)).unwrap();
    assert!(drain(&mut s).is_empty());
    s.job_finished(WorkerId(4)).unwrap();
    s.job_finished(WorkerId(5)).unwrap();
    assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(5), 4)]);
    // From now on every A starts at once, and every freed general slot goes to the next B.
    for (next_b, i) in (5..).zip(0..50) {
        let w = started(s.offer_command(A, 6000 + i).unwrap());
        assert_eq!(started_commands(drain(&mut s)), vec![(w, 6000 + i)]);
        s.job_finished(w).unwrap();
        assert!(drain(&mut s).is_empty());
        s.job_finished(WorkerId(1)).unwrap();
        assert_eq!(started_commands(drain(&mut s)), vec![(WorkerId(1), next_b)]);
        check_invariants(&s);
    }
}

#[test]
fn queued_commands_of_one_category_run_in_arrival_order() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1).with_category(CategoryLimits::new(0, QueueLimit::Unlimited)),
    )
    .unwrap();
    for i in 0..20 {
        let _ = s.offer_command(CategoryId(0), i).unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..20 {
        let ran = started_commands(drain(&mut s));
        assert_eq!(ran.len(), 1);
        seen.push(ran[0].1);
        s.job_finished(ran[0].0).unwrap();
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
}

// ----- max_queue -----

#[test]
fn max_queue_zero_never_queues() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1).with_category(CategoryLimits::new(0, QueueLimit::At(0))),
    )
    .unwrap();
    assert!(matches!(s.offer_command(A, 1).unwrap(), Offer::Started(_)));
    assert_eq!(s.offer_command(A, 2).unwrap(), Offer::Dropped);
    assert_eq!(s.category_queued(A), Some(0));
    let outs = drain(&mut s);
    assert_eq!(
        outs.last(),
        Some(&SchedOutput::Dropped {
            category: A,
            injected: false,
            job: 2,
        })
    );
}

#[test]
fn default_max_queue_holds_two_hundred() {
    let mut s = readme();
    let mut offers = Vec::new();
    for _ in 0..205 {
        offers.push(s.offer_command(B, "b").unwrap());
        check_invariants(&s);
    }
    assert_eq!(
        offers
            .iter()
            .filter(|o| matches!(o, Offer::Started(_)))
            .count(),
        4
    );
    assert_eq!(offers.iter().filter(|o| **o == Offer::Queued).count(), 200);
    assert_eq!(offers[204], Offer::Dropped);
    assert_eq!(s.category_queued(B), Some(200));
    let dropped = drain(&mut s)
        .into_iter()
        .filter(|o| matches!(o, SchedOutput::Dropped { category: B, .. }))
        .count();
    assert_eq!(dropped, 1);
    // Space frees up as queued commands start.
    s.job_finished(WorkerId(0)).unwrap();
    assert_eq!(s.offer_command(B, "again").unwrap(), Offer::Queued);
}

// ----- the fair-drop rule -----

/// One worker, category A with a queue of `limit`; the worker is busy with job 0.
fn busy_one_worker(limit: u32) -> Scheduler<u32> {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1).with_category(CategoryLimits::new(0, QueueLimit::At(limit))),
    )
    .unwrap();
    assert!(matches!(
        s.offer_command_from(A, 1, 0).unwrap(),
        Offer::Started(_)
    ));
    drain(&mut s);
    s
}

fn dropped_jobs(outs: Vec<SchedOutput<u32>>) -> Vec<u32> {
    outs.into_iter()
        .filter_map(|o| match o {
            SchedOutput::Dropped { job, .. } => Some(job),
            _ => None,
        })
        .collect()
}

#[test]
fn a_flooding_source_cannot_take_a_quiet_sources_place() {
    let mut s = busy_one_worker(4);
    // Source 1 floods: four queued, then its own further commands are dropped as before.
    for job in 1..=4 {
        assert_eq!(s.offer_command_from(A, 1, job).unwrap(), Offer::Queued);
    }
    assert_eq!(s.offer_command_from(A, 1, 5).unwrap(), Offer::Dropped);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![5]);
    // Source 2 arrives at the full queue: source 1's newest queued command makes room.
    assert_eq!(s.offer_command_from(A, 2, 100).unwrap(), Offer::Queued);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![4]);
    assert_eq!(s.category_queued(A), Some(4));
    check_invariants(&s);
    // Source 2 (one queued) still finds room while source 1 holds three.
    assert_eq!(s.offer_command_from(A, 2, 101).unwrap(), Offer::Queued);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![3]);
    // Now 2 and 2: source 2's next is dropped like anyone's at a fairly shared full queue.
    assert_eq!(s.offer_command_from(A, 2, 102).unwrap(), Offer::Dropped);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![102]);
    // The queue keeps arrival order: 1, 2 (source 1), then 100, 101 (source 2).
    let mut ran = Vec::new();
    s.job_finished(WorkerId(0)).unwrap();
    for _ in 0..4 {
        let started = started_commands(drain(&mut s));
        assert_eq!(started.len(), 1);
        ran.push(started[0].1);
        s.job_finished(started[0].0).unwrap();
    }
    assert_eq!(ran, vec![1, 2, 100, 101]);
    assert_eq!(s.category_queued(A), Some(0));
    check_invariants(&s);
}

#[test]
fn fair_drop_leaves_commands_without_a_source_and_near_ties_alone() {
    let mut s = busy_one_worker(2);
    // Injected tasks and source-less commands never count for or against anyone.
    assert_eq!(s.inject_task(A, 10).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command(A, 11).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command_from(A, 7, 12).unwrap(), Offer::Dropped);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![12]);
    // One more than the newcomer's source is not enough to evict (it would only swap them).
    let mut s = busy_one_worker(2);
    assert_eq!(s.offer_command_from(A, 1, 1).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command_from(A, 2, 2).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command_from(A, 3, 3).unwrap(), Offer::Dropped);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![3]);
    // A queue of zero never queues, whoever asks.
    let mut s = busy_one_worker(0);
    assert_eq!(s.offer_command_from(A, 2, 5).unwrap(), Offer::Dropped);
    // After an eviction the queue keeps its order: the oldest command still starts first.
    let mut s = busy_one_worker(2);
    assert_eq!(s.offer_command_from(A, 1, 1).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command_from(A, 1, 2).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command_from(A, 2, 3).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command_from(A, 3, 4).unwrap(), Offer::Dropped);
    assert_eq!(dropped_jobs(drain(&mut s)), vec![2, 4]);
    check_invariants(&s);
    s.job_finished(WorkerId(0)).unwrap();
    assert_eq!(started_commands(drain(&mut s))[0].1, 1);
}

#[test]
fn negative_max_queue_is_unlimited() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1).with_category(CategoryLimits::new(0, QueueLimit::Unlimited)),
    )
    .unwrap();
    for i in 0..5000 {
        assert_ne!(s.offer_command(A, i).unwrap(), Offer::Dropped);
    }
    assert_eq!(s.category_queued(A), Some(4999));
}

#[test]
fn queue_limit_holds_after_every_step() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(2)
            .with_category(CategoryLimits::new(1, QueueLimit::At(3)))
            .with_category(CategoryLimits::new(0, QueueLimit::At(5))),
    )
    .unwrap();
    let mut running: Vec<WorkerId> = Vec::new();
    for i in 0..300u32 {
        let cat = CategoryId((i % 2) as u16);
        let _ = s.offer_command(cat, i).unwrap();
        if i % 3 == 0 {
            if let Some(w) = running.pop() {
                s.job_finished(w).unwrap();
            }
        }
        running.extend(runs(drain(&mut s)).into_iter().map(|(w, _)| w));
        check_invariants(&s);
        assert!(s.category_queued(CategoryId(0)).unwrap() <= 3);
        assert!(s.category_queued(CategoryId(1)).unwrap() <= 5);
    }
}

// ----- injected tasks -----

#[test]
fn injected_tasks_obey_category_limits() {
    let mut s: Scheduler<&str> = Scheduler::new(
        SchedulerConfig::new(1)
            .with_category(CategoryLimits::new(1, QueueLimit::At(1)))
            .with_category(CategoryLimits::new(0, QueueLimit::At(1))),
    )
    .unwrap();
    let w = started(s.inject_task(B, "t1").unwrap());
    assert_eq!(
        runs(drain(&mut s)),
        vec![(
            w,
            SchedJob::Task {
                category: B,
                job: "t1"
            }
        )]
    );
    // General capacity is used up; B has no reservation: the next task queues, then drops.
    assert_eq!(s.inject_task(B, "t2").unwrap(), Offer::Queued);
    assert_eq!(s.inject_task(B, "t3").unwrap(), Offer::Dropped);
    assert_eq!(
        drain(&mut s),
        vec![SchedOutput::Dropped {
            category: B,
            injected: true,
            job: "t3",
        }]
    );
    // A's reserved slot admits a task even though general capacity is used up.
    assert!(matches!(s.inject_task(A, "t4").unwrap(), Offer::Started(_)));
    assert_eq!(s.category_active(A), Some(1));
    check_invariants(&s);
}

#[test]
fn commands_and_tasks_share_one_queue_order() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1).with_category(CategoryLimits::new(0, QueueLimit::Unlimited)),
    )
    .unwrap();
    let w = started(s.offer_command(A, 0).unwrap());
    assert_eq!(s.inject_task(A, 1).unwrap(), Offer::Queued);
    assert_eq!(s.offer_command(A, 2).unwrap(), Offer::Queued);
    drain(&mut s);
    s.job_finished(w).unwrap();
    assert_eq!(
        runs(drain(&mut s)),
        vec![(
            w,
            SchedJob::Task {
                category: A,
                job: 1
            }
        )]
    );
    s.job_finished(w).unwrap();
    assert_eq!(
        runs(drain(&mut s)),
        vec![(
            w,
            SchedJob::Command {
                category: A,
                job: 2
            }
        )]
    );
}

#[test]
fn unknown_category_is_an_error_with_oxenmq_text() {
    let mut s = readme();
    let err = s.inject_task(CategoryId(9), "x").unwrap_err();
    assert_eq!(err, SchedError::UnknownCategory(CategoryId(9)));
    assert_eq!(
        err.to_string(),
        "Invalid category `cat9': category does not exist"
    );
    assert!(s.offer_command(CategoryId(2), "x").is_err());
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.category_queued(CategoryId(9)), None);
}

// ----- batch and reply pool admission -----

#[test]
fn batch_jobs_use_their_reservation_when_general_slots_are_busy() {
    let mut s = readme(); // batch reserved 2, reply 1, max 9
    offer_all(&mut s, &["B1", "B2", "B3", "B4"]);
    drain(&mut s);
    let batch = s
        .submit_batch(&[Target::Worker; 3], Completion::None)
        .unwrap();
    let ran = runs(drain(&mut s));
    assert_eq!(
        ran,
        vec![
            (WorkerId(4), SchedJob::BatchItem { batch, index: 0 }),
            (WorkerId(5), SchedJob::BatchItem { batch, index: 1 }),
        ]
    );
    assert_eq!(s.stats().batch_active, 2);
    assert_eq!(s.batch_queued(), 1);
    check_invariants(&s);
}

#[test]
fn batch_jobs_beyond_their_reservation_use_free_general_slots() {
    let mut s = readme();
    let batch = s
        .submit_batch(&[Target::Worker; 6], Completion::None)
        .unwrap();
    // active < general admits 4; then batch_active 4 >= reserved 2 and active 4 >= general.
    assert_eq!(runs(drain(&mut s)).len(), 4);
    assert_eq!(s.batch_queued(), 2);
    assert_eq!(s.batch_remaining(batch), Some(6));
    check_invariants(&s);
}

#[test]
fn zero_batch_reservation_waits_for_general_capacity() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1)
            .with_batch_threads(Some(0))
            .with_reply_threads(Some(0))
            .with_category(CategoryLimits::new(1, QueueLimit::Unlimited)),
    )
    .unwrap();
    let w = started(s.offer_command(A, 0).unwrap());
    drain(&mut s);
    s.submit_job(7, Target::Worker).unwrap();
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.batch_queued(), 1);
    s.job_finished(w).unwrap();
    assert_eq!(runs(drain(&mut s)), vec![(w, SchedJob::Job(7))]);
}

#[test]
fn reply_jobs_have_their_own_reservation() {
    let mut s = readme(); // reply reserved 1
    offer_all(&mut s, &["B1", "B2", "B3", "B4"]);
    drain(&mut s);
    for i in ["r1", "r2"] {
        s.submit_reply_job(i).unwrap();
    }
    assert_eq!(
        runs(drain(&mut s)),
        vec![(WorkerId(4), SchedJob::Reply("r1"))]
    );
    assert_eq!(s.stats().reply_active, 1);
    assert_eq!(s.reply_queued(), 1);
    // Finishing the reply frees the reply reservation for the next one.
    s.job_finished(WorkerId(4)).unwrap();
    assert_eq!(
        runs(drain(&mut s)),
        vec![(WorkerId(4), SchedJob::Reply("r2"))]
    );
    check_invariants(&s);
}

#[test]
fn freed_slot_goes_to_batch_then_reply_then_commands() {
    let mut s: Scheduler<&str> = Scheduler::new(
        SchedulerConfig::new(1)
            .with_batch_threads(Some(0))
            .with_reply_threads(Some(0))
            .with_category(CategoryLimits::new(0, QueueLimit::Unlimited)),
    )
    .unwrap();
    assert_eq!(s.max_workers(), 1);
    let w = started(s.offer_command(A, "first").unwrap());
    assert_eq!(s.offer_command(A, "cmd").unwrap(), Offer::Queued);
    s.submit_reply_job("reply").unwrap();
    s.submit_job("job", Target::Worker).unwrap();
    drain(&mut s);
    let mut order = Vec::new();
    for _ in 0..3 {
        s.job_finished(w).unwrap();
        let ran = runs(drain(&mut s));
        assert_eq!(ran.len(), 1);
        order.push(match &ran[0].1 {
            SchedJob::Job(j) | SchedJob::Reply(j) | SchedJob::Command { job: j, .. } => *j,
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(order, ["job", "reply", "cmd"]);
}

#[test]
fn pools_never_exceed_max_workers() {
    let mut s = readme();
    let _ = s.submit_batch(&[Target::Worker; 50], Completion::Worker);
    for i in 0..50 {
        s.submit_reply_job("r").unwrap();
        let _ = s
            .offer_command(if i % 2 == 0 { A } else { B }, "c")
            .unwrap();
    }
    drain(&mut s);
    let st = s.stats();
    // The batch came first and took all 4 general slots (more than its reservation of 2);
    // then the reply reservation (1) and A's reservation (2); B has to queue.
    assert_eq!(st.batch_active, 4);
    assert_eq!(st.reply_active, 1);
    assert_eq!(st.categories[0].active, 2);
    assert_eq!(st.active, 7);
    assert!(st.active <= st.max_workers);
    check_invariants(&s);
}

// ----- batches -----

fn finish_all<J>(s: &mut Scheduler<J>, workers: &[WorkerId]) -> Vec<SchedOutput<J>> {
    let mut outs = Vec::new();
    for &w in workers {
        s.job_finished(w).unwrap();
        outs.extend(drain(s));
    }
    outs
}

#[test]
fn worker_completion_runs_exactly_once_after_every_job() {
    let mut s: Scheduler<()> = Scheduler::new(SchedulerConfig::new(4)).unwrap();
    let batch = s
        .submit_batch(&[Target::Worker; 3], Completion::Worker)
        .unwrap();
    let ran = runs(drain(&mut s));
    let workers: Vec<_> = ran.iter().map(|&(w, _)| w).collect();
    // Finish in reverse order: the completion waits for the last one.
    s.job_finished(workers[2]).unwrap();
    s.job_finished(workers[0]).unwrap();
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.batch_remaining(batch), Some(1));
    s.job_finished(workers[1]).unwrap();
    let outs = drain(&mut s);
    assert_eq!(
        outs,
        vec![SchedOutput::RunJob {
            worker: workers[1],
            job: SchedJob::Completion { batch }
        }]
    );
    assert_eq!(s.batch_remaining(batch), Some(0));
    s.job_finished(workers[1]).unwrap();
    assert_eq!(drain(&mut s), vec![SchedOutput::BatchDone { batch }]);
    assert_eq!(s.batch_remaining(batch), None);
    assert_eq!(s.stats().live_batches, 0);
    assert_eq!(s.stats().batch_active, 0);
}

#[test]
fn tagged_completion_runs_on_its_thread() {
    let mut s: Scheduler<()> =
        Scheduler::new(SchedulerConfig::new(2).with_tagged_thread("t")).unwrap();
    let tw = s.tagged_worker(T0).unwrap();
    let batch = s
        .submit_batch(&[Target::Worker, Target::Worker], Completion::Tagged(T0))
        .unwrap();
    let workers: Vec<_> = runs(drain(&mut s)).iter().map(|&(w, _)| w).collect();
    let outs = finish_all(&mut s, &workers);
    assert_eq!(
        outs,
        vec![SchedOutput::RunJob {
            worker: tw,
            job: SchedJob::Completion { batch }
        }]
    );
    s.job_finished(tw).unwrap();
    assert_eq!(drain(&mut s), vec![SchedOutput::BatchDone { batch }]);
}

#[test]
fn in_driver_completion_is_emitted_then_batch_done() {
    let mut s: Scheduler<()> = Scheduler::new(SchedulerConfig::new(2)).unwrap();
    let batch = s
        .submit_batch(&[Target::Worker; 2], Completion::InDriver)
        .unwrap();
    let workers: Vec<_> = runs(drain(&mut s)).iter().map(|&(w, _)| w).collect();
    let outs = finish_all(&mut s, &workers);
    assert_eq!(
        outs,
        vec![
            SchedOutput::RunInDriver(InDriver::Completion { batch }),
            SchedOutput::BatchDone { batch }
        ]
    );
    assert_eq!(s.stats().live_batches, 0);
}

#[test]
fn batch_without_completion_is_done_after_its_last_job() {
    let mut s: Scheduler<()> =
        Scheduler::new(SchedulerConfig::new(1).with_tagged_thread("t")).unwrap();
    let batch = s
        .submit_batch(&[Target::Tagged(T0), Target::Worker], Completion::None)
        .unwrap();
    let ran = runs(drain(&mut s));
    assert_eq!(ran.len(), 2);
    s.job_finished(ran[0].0).unwrap();
    assert!(drain(&mut s).is_empty());
    s.job_finished(ran[1].0).unwrap();
    assert_eq!(drain(&mut s), vec![SchedOutput::BatchDone { batch }]);
}

#[test]
fn batch_jobs_go_where_they_are_told() {
    let mut s: Scheduler<()> = Scheduler::new(
        SchedulerConfig::new(2)
            .with_tagged_thread("x")
            .with_tagged_thread("y"),
    )
    .unwrap();
    let batch = s
        .submit_batch(
            &[
                Target::Tagged(T1),
                Target::Worker,
                Target::Tagged(T0),
                Target::Tagged(T1),
            ],
            Completion::Worker,
        )
        .unwrap();
    let ran = runs(drain(&mut s));
    let x = s.tagged_worker(T0).unwrap();
    let y = s.tagged_worker(T1).unwrap();
    // Tagged threads are served first, one job each; then the batch pool.
    assert_eq!(
        ran,
        vec![
            (x, SchedJob::BatchItem { batch, index: 2 }),
            (y, SchedJob::BatchItem { batch, index: 0 }),
            (WorkerId(0), SchedJob::BatchItem { batch, index: 1 }),
        ]
    );
    assert_eq!(s.tagged_queued(T1), Some(1));
    s.job_finished(y).unwrap();
    assert_eq!(
        runs(drain(&mut s)),
        vec![(y, SchedJob::BatchItem { batch, index: 3 })]
    );
}

#[test]
fn batch_misuse_errors_use_oxenmq_text_and_queue_nothing() {
    let mut s: Scheduler<()> =
        Scheduler::new(SchedulerConfig::new(1).with_tagged_thread("t")).unwrap();
    let err = s.submit_batch(&[], Completion::Worker).unwrap_err();
    assert_eq!(err.to_string(), "Cannot batch a a job batch with 0 jobs");
    let err = s
        .submit_batch(&[Target::Worker, Target::InDriver], Completion::None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cannot add a proxy thread batch job -- this makes no sense"
    );
    assert_eq!(
        s.submit_batch(&[Target::Tagged(T1)], Completion::None),
        Err(SchedError::UnknownTaggedThread(T1))
    );
    assert_eq!(
        s.submit_batch(&[Target::Worker], Completion::Tagged(T1)),
        Err(SchedError::UnknownTaggedThread(T1))
    );
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.stats().live_batches, 0);
    assert_eq!(s.active(), 0);
}

#[test]
fn in_driver_job_is_refused_with_oxenmq_text() {
    let mut s: Scheduler<u8> = Scheduler::new(SchedulerConfig::new(1)).unwrap();
    let err = s.submit_job(1, Target::InDriver).unwrap_err();
    assert_eq!(
        err.to_string(),
        "job() cannot be used to queue an in-proxy job"
    );
    assert_eq!(
        s.submit_job(1, Target::Tagged(T0)),
        Err(SchedError::UnknownTaggedThread(T0))
    );
    assert!(drain(&mut s).is_empty());
}

#[test]
fn batch_builder_enforces_oxenmq_rules() {
    let mut s: Scheduler<()> =
        Scheduler::new(SchedulerConfig::new(1).with_tagged_thread("t")).unwrap();
    let mut b = BatchBuilder::new();
    // An empty batch is refused and the builder stays usable.
    assert_eq!(s.start_batch(&mut b), Err(SchedError::EmptyBatch));
    assert!(!b.is_started());
    assert_eq!(b.add_job(Target::Worker), Ok(0));
    assert_eq!(b.add_job(Target::Tagged(T0)), Ok(1));
    assert_eq!(
        b.add_job(Target::InDriver).unwrap_err().to_string(),
        "Cannot add a proxy thread batch job -- this makes no sense"
    );
    b.completion(Completion::InDriver).unwrap();
    assert_eq!(
        b.completion(Completion::Worker).unwrap_err().to_string(),
        "Completion function can only be set once"
    );
    assert_eq!(b.len(), 2);
    let batch = s.start_batch(&mut b).unwrap();
    assert!(b.is_started());
    let after = "Cannot add jobs or completion function after starting a oxenmq::Batch!";
    assert_eq!(b.add_job(Target::Worker).unwrap_err().to_string(), after);
    assert_eq!(
        b.completion(Completion::None).unwrap_err().to_string(),
        after
    );
    assert_eq!(s.start_batch(&mut b), Err(SchedError::BatchAlreadyStarted));
    let ran = runs(drain(&mut s));
    assert_eq!(ran.len(), 2);
    let outs = finish_all(&mut s, &[ran[0].0, ran[1].0]);
    assert_eq!(
        outs,
        vec![
            SchedOutput::RunInDriver(InDriver::Completion { batch }),
            SchedOutput::BatchDone { batch }
        ]
    );
}

#[test]
fn batch_builder_with_unknown_thread_stays_unstarted() {
    let mut s: Scheduler<()> = Scheduler::new(SchedulerConfig::new(1)).unwrap();
    let mut b = BatchBuilder::default();
    b.reserve(2);
    b.add_job(Target::Tagged(T0)).unwrap();
    assert_eq!(
        s.start_batch(&mut b),
        Err(SchedError::UnknownTaggedThread(T0))
    );
    assert!(!b.is_started());
    assert_eq!(b.completion_target(), Completion::None);
}

#[test]
fn batch_ids_increase_and_start_at_one() {
    let mut s: Scheduler<()> = Scheduler::new(SchedulerConfig::new(1)).unwrap();
    let a = s.submit_batch(&[Target::Worker], Completion::None).unwrap();
    let b = s.submit_batch(&[Target::Worker], Completion::None).unwrap();
    assert_eq!(a, BatchId(1));
    assert!(b > a);
}

#[test]
fn many_batches_each_complete_exactly_once() {
    let mut s: Scheduler<()> = Scheduler::new(
        SchedulerConfig::new(3)
            .with_tagged_thread("a")
            .with_tagged_thread("b"),
    )
    .unwrap();
    let completions = [
        Completion::None,
        Completion::Worker,
        Completion::Tagged(T0),
        Completion::InDriver,
    ];
    let mut expected = alloc::collections::BTreeMap::new();
    for i in 0..40usize {
        let jobs: Vec<Target> = (0..(i % 5 + 1))
            .map(|j| match (i + j) % 3 {
                0 => Target::Worker,
                1 => Target::Tagged(T0),
                _ => Target::Tagged(T1),
            })
            .collect();
        let batch = s.submit_batch(&jobs, completions[i % 4]).unwrap();
        expected.insert(batch, completions[i % 4]);
    }
    let mut done = alloc::collections::BTreeMap::new();
    let mut completed = alloc::collections::BTreeMap::new();
    let mut busy: Vec<WorkerId> = Vec::new();
    for _ in 0..10_000 {
        for o in drain(&mut s) {
            match o {
                SchedOutput::RunJob { worker, job } => {
                    if let SchedJob::Completion { batch } = job {
                        *completed.entry(batch).or_insert(0) += 1;
                    }
                    busy.push(worker);
                }
                SchedOutput::RunInDriver(InDriver::Completion { batch }) => {
                    *completed.entry(batch).or_insert(0) += 1;
                }
                SchedOutput::BatchDone { batch } => {
                    *done.entry(batch).or_insert(0) += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        // Finish the oldest running job first, so tagged and pool jobs interleave.
        if busy.is_empty() {
            break;
        }
        let w = busy.remove(0);
        s.job_finished(w).unwrap();
        check_invariants(&s);
    }
    assert_eq!(done.len(), 40);
    assert!(done.values().all(|&n| n == 1));
    for (batch, completion) in expected {
        let want = usize::from(completion != Completion::None);
        assert_eq!(
            completed.get(&batch).copied().unwrap_or(0),
            want,
            "{batch:?}"
        );
    }
    assert_eq!(s.stats().live_batches, 0);
}

// ----- tagged threads -----

#[test]
fn tagged_thread_runs_a_hundred_jobs_in_fifo_order() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1)
            .with_tagged_thread("a")
            .with_tagged_thread("b"),
    )
    .unwrap();
    for i in 0..100 {
        s.submit_job(i, Target::Tagged(T0)).unwrap();
        s.submit_job(1000 + i, Target::Tagged(T1)).unwrap();
    }
    let (wa, wb) = (s.tagged_worker(T0).unwrap(), s.tagged_worker(T1).unwrap());
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..100 {
        for (w, job) in runs(drain(&mut s)) {
            let SchedJob::Job(j) = job else {
                panic!("{job:?}")
            };
            if w == wa {
                seen_a.push(j);
            } else {
                assert_eq!(w, wb);
                seen_b.push(j);
            }
            // One job at a time per thread.
            assert!(s.is_busy(w));
        }
        s.job_finished(wa).unwrap();
        s.job_finished(wb).unwrap();
    }
    assert_eq!(seen_a, (0..100).collect::<Vec<_>>());
    assert_eq!(seen_b, (1000..1100).collect::<Vec<_>>());
    assert_eq!(s.tagged_queued(T0), Some(0));
}

#[test]
fn tagged_threads_are_outside_the_worker_limits() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(1)
            .with_batch_threads(Some(0))
            .with_reply_threads(Some(0))
            .with_category(CategoryLimits::new(0, QueueLimit::At(10)))
            .with_tagged_thread("t"),
    )
    .unwrap();
    let _ = started(s.offer_command(A, 0).unwrap());
    s.submit_job(1, Target::Worker).unwrap();
    s.submit_job(2, Target::Tagged(T0)).unwrap();
    let ran = runs(drain(&mut s));
    assert_eq!(ran.len(), 2);
    assert_eq!(ran[1], (WorkerId(1), SchedJob::Job(2)));
    assert_eq!(s.active(), 1);
    assert_eq!(s.batch_queued(), 1);
    assert_eq!(s.stats().tagged_busy, 1);
}

// ----- timers -----

fn timer_sched() -> Scheduler<u32> {
    Scheduler::new(
        SchedulerConfig::new(1)
            .with_batch_threads(Some(0))
            .with_reply_threads(Some(0))
            .with_category(CategoryLimits::new(0, QueueLimit::Unlimited))
            .with_tagged_thread("t"),
    )
    .unwrap()
}

#[test]
fn timer_fires_every_interval() {
    let mut s = timer_sched();
    let t = s
        .add_timer(ms(0), Duration::from_millis(100), false, Target::Worker)
        .unwrap();
    assert_eq!(t, TimerId(1));
    assert_eq!(s.poll_timeout(), Some(ms(100)));
    s.handle_timeout(ms(99));
    assert!(drain(&mut s).is_empty());
    for tick in 1..=5u64 {
        s.handle_timeout(ms(100 * tick));
        assert_eq!(
            runs(drain(&mut s)),
            vec![(WorkerId(0), SchedJob::Timer { timer: t })]
        );
        s.job_finished(WorkerId(0)).unwrap();
        assert_eq!(s.poll_timeout(), Some(ms(100 * (tick + 1))));
    }
    assert!(s.timer_scheduled(t));
}

#[test]
fn late_wakeup_fires_once_and_keeps_the_grid() {
    let mut s = timer_sched();
    let t = s
        .add_timer(ms(5), Duration::from_millis(100), false, Target::Worker)
        .unwrap();
    // Missed the deadlines at 105, 205 and 305: one firing, next on the original grid.
    s.handle_timeout(ms(350));
    assert_eq!(runs(drain(&mut s)).len(), 1);
    assert_eq!(s.poll_timeout(), Some(ms(405)));
    s.job_finished(WorkerId(0)).unwrap();
    // Exactly on a grid point: that point counts as fired, the next one is a period later.
    s.handle_timeout(ms(405));
    assert_eq!(
        runs(drain(&mut s)),
        vec![(WorkerId(0), SchedJob::Timer { timer: t })]
    );
    assert_eq!(s.poll_timeout(), Some(ms(505)));
}

#[test]
fn squelch_skips_firings_while_the_previous_is_queued_or_running() {
    let mut s = timer_sched();
    // The only worker is busy with a command, so the first firing has to queue.
    let w = started(s.offer_command(A, 0).unwrap());
    let t = s
        .add_timer(ms(0), Duration::from_millis(10), true, Target::Worker)
        .unwrap();
    drain(&mut s);
    s.handle_timeout(ms(10));
    assert_eq!(s.batch_queued(), 1);
    s.handle_timeout(ms(20));
    s.handle_timeout(ms(30));
    assert_eq!(s.batch_queued(), 1, "queued firing squelches the next ones");
    s.job_finished(w).unwrap();
    assert_eq!(runs(drain(&mut s)), vec![(w, SchedJob::Timer { timer: t })]);
    s.handle_timeout(ms(40));
    assert!(drain(&mut s).is_empty(), "running firing squelches too");
    assert_eq!(s.batch_queued(), 0);
    s.job_finished(w).unwrap();
    s.handle_timeout(ms(50));
    assert_eq!(runs(drain(&mut s)).len(), 1);
}

#[test]
fn unsquelched_timer_queues_every_firing() {
    let mut s = timer_sched();
    let _ = started(s.offer_command(A, 0).unwrap());
    s.add_timer(ms(0), Duration::from_millis(10), false, Target::Worker)
        .unwrap();
    for tick in 1..=3 {
        s.handle_timeout(ms(10 * tick));
    }
    assert_eq!(s.batch_queued(), 3);
}

#[test]
fn cancel_timer_is_idempotent_and_releases_at_once_when_idle() {
    let mut s = timer_sched();
    let t = s
        .add_timer(ms(0), Duration::from_millis(10), true, Target::Worker)
        .unwrap();
    assert!(s.cancel_timer(t));
    assert_eq!(drain(&mut s), vec![SchedOutput::TimerReleased { timer: t }]);
    assert!(!s.cancel_timer(t));
    assert!(!s.cancel_timer(TimerId(0)));
    assert!(!s.cancel_timer(TimerId(99)));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.timer_scheduled(t));
    s.handle_timeout(ms(100));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn timer_cancelling_itself_on_its_third_tick() {
    let mut s = timer_sched();
    let t = s
        .add_timer(ms(0), Duration::from_millis(100), true, Target::Worker)
        .unwrap();
    let mut ticks = 0;
    for now in (100..=600).step_by(100) {
        s.handle_timeout(ms(now));
        for (w, job) in runs(drain(&mut s)) {
            assert_eq!(job, SchedJob::Timer { timer: t });
            ticks += 1;
            if ticks == 3 {
                // The job cancels its own timer while running: no release until it returns.
                assert!(s.cancel_timer(t));
                assert!(drain(&mut s).is_empty());
                assert!(!s.timer_scheduled(t));
            }
            s.job_finished(w).unwrap();
            if ticks == 3 {
                assert_eq!(drain(&mut s), vec![SchedOutput::TimerReleased { timer: t }]);
            }
        }
    }
    assert_eq!(ticks, 3);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.stats().live_timers, 0);
}

#[test]
fn cancel_discards_queued_firings() {
    let mut s = timer_sched();
    let w = started(s.offer_command(A, 0).unwrap());
    let t = s
        .add_timer(ms(0), Duration::from_millis(10), false, Target::Worker)
        .unwrap();
    s.handle_timeout(ms(10));
    s.handle_timeout(ms(20));
    assert_eq!(s.batch_queued(), 2);
    drain(&mut s);
    assert!(s.cancel_timer(t));
    assert_eq!(s.batch_queued(), 0);
    assert_eq!(drain(&mut s), vec![SchedOutput::TimerReleased { timer: t }]);
    s.job_finished(w).unwrap();
    assert!(drain(&mut s).is_empty());
}

#[test]
fn timer_on_a_tagged_thread() {
    let mut s = timer_sched();
    let tw = s.tagged_worker(T0).unwrap();
    let t = s
        .add_timer(ms(0), Duration::from_millis(10), true, Target::Tagged(T0))
        .unwrap();
    s.handle_timeout(ms(10));
    assert_eq!(
        runs(drain(&mut s)),
        vec![(tw, SchedJob::Timer { timer: t })]
    );
    assert_eq!(s.active(), 0);
    s.handle_timeout(ms(20));
    assert_eq!(s.tagged_queued(T0), Some(0), "squelched while running");
    s.job_finished(tw).unwrap();
    assert!(s.cancel_timer(t));
    assert_eq!(drain(&mut s), vec![SchedOutput::TimerReleased { timer: t }]);
    assert_eq!(
        s.add_timer(ms(0), Duration::from_millis(1), true, Target::Tagged(T1)),
        Err(SchedError::UnknownTaggedThread(T1))
    );
}

#[test]
fn in_driver_timer_fires_as_an_event_every_tick() {
    let mut s = timer_sched();
    let t = s
        .add_timer(ms(0), Duration::from_millis(10), true, Target::InDriver)
        .unwrap();
    for tick in 1..=3 {
        s.handle_timeout(ms(10 * tick));
        assert_eq!(
            drain(&mut s),
            vec![SchedOutput::RunInDriver(InDriver::Timer { timer: t })]
        );
    }
    assert_eq!(s.active(), 0);
    assert!(s.cancel_timer(t));
    assert_eq!(drain(&mut s), vec![SchedOutput::TimerReleased { timer: t }]);
}

#[test]
fn zero_interval_timer_is_refused() {
    let mut s = timer_sched();
    for d in [Duration::ZERO, Duration::from_nanos(999)] {
        let err = s.add_timer(ms(0), d, true, Target::Worker).unwrap_err();
        assert_eq!(err, SchedError::ZeroTimerInterval);
    }
    assert!(
        s.add_timer(ms(0), Duration::from_micros(1), true, Target::Worker)
            .is_ok()
    );
}

#[test]
fn poll_timeout_is_the_earliest_deadline_and_timers_fire_in_deadline_order() {
    let mut s = timer_sched();
    assert_eq!(s.poll_timeout(), None);
    let slow = s
        .add_timer(ms(0), Duration::from_millis(300), false, Target::InDriver)
        .unwrap();
    let fast = s
        .add_timer(ms(0), Duration::from_millis(200), false, Target::InDriver)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(ms(200)));
    s.handle_timeout(ms(300));
    assert_eq!(
        drain(&mut s),
        vec![
            SchedOutput::RunInDriver(InDriver::Timer { timer: fast }),
            SchedOutput::RunInDriver(InDriver::Timer { timer: slow }),
        ]
    );
    assert_eq!(s.poll_timeout(), Some(ms(400)));
}

#[test]
fn timer_near_the_end_of_time_does_not_loop() {
    let mut s = timer_sched();
    s.add_timer(
        Instant::MAX,
        Duration::from_secs(1),
        false,
        Target::InDriver,
    )
    .unwrap();
    assert_eq!(s.poll_timeout(), Some(Instant::MAX));
    s.handle_timeout(Instant::MAX);
    assert_eq!(drain(&mut s).len(), 1);
    // The next grid point is not representable: the timer parks instead of refiring.
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(Instant::MAX);
    assert!(drain(&mut s).is_empty());
}

// ----- chains and deadlock freedom -----

#[test]
fn single_general_worker_runs_a_chain_of_batches() {
    for batch_threads in [None, Some(0)] {
        let mut s: Scheduler<()> = Scheduler::new(
            SchedulerConfig::new(1)
                .with_batch_threads(batch_threads)
                .with_reply_threads(Some(0)),
        )
        .unwrap();
        s.submit_batch(&[Target::Worker; 2], Completion::Worker)
            .unwrap();
        let mut links = 0;
        let mut steps = 0;
        while links < 100 {
            steps += 1;
            assert!(steps < 10_000, "chain stalled");
            let outs = drain(&mut s);
            let mut progressed = false;
            for o in outs {
                match o {
                    SchedOutput::RunJob { worker, job } => {
                        if matches!(job, SchedJob::Completion { .. }) {
                            // The completion submits the next batch before it returns.
                            s.submit_batch(&[Target::Worker; 2], Completion::Worker)
                                .unwrap();
                        }
                        s.job_finished(worker).unwrap();
                        progressed = true;
                    }
                    SchedOutput::BatchDone { .. } => links += 1,
                    other => panic!("{other:?}"),
                }
            }
            assert!(progressed || links >= 100, "nothing runnable: deadlock");
            check_invariants(&s);
        }
    }
}

// ----- workers -----

#[test]
fn worker_slots_are_spawned_in_order_and_reused_lifo() {
    let mut s: Scheduler<u32> = Scheduler::new(SchedulerConfig::new(4)).unwrap();
    for i in 0..3 {
        s.submit_job(i, Target::Worker).unwrap();
    }
    let ran = runs(drain(&mut s));
    let ws: Vec<_> = ran.iter().map(|&(w, _)| w).collect();
    assert_eq!(ws, [WorkerId(0), WorkerId(1), WorkerId(2)]);
    assert_eq!(s.spawned_workers(), 3);
    s.job_finished(WorkerId(0)).unwrap();
    s.job_finished(WorkerId(2)).unwrap();
    // The most recently freed slot (2) goes first, then 0, then a new one (3).
    for (i, want) in [(10, 2), (11, 0), (12, 3)] {
        s.submit_job(i, Target::Worker).unwrap();
        assert_eq!(
            runs(drain(&mut s)),
            vec![(WorkerId(want), SchedJob::Job(i))]
        );
    }
    assert_eq!(s.spawned_workers(), 4);
    assert_eq!(s.stats().idle, 0);
}

#[test]
fn finishing_an_idle_or_unknown_worker_is_an_error() {
    let mut s: Scheduler<u32> =
        Scheduler::new(SchedulerConfig::new(2).with_tagged_thread("t")).unwrap();
    // max_workers = 2 + 1 + 1 = 4; tagged thread is w4.
    assert_eq!(
        s.job_finished(WorkerId(0)),
        Err(SchedError::WorkerIdle(WorkerId(0)))
    );
    assert_eq!(
        s.job_finished(WorkerId(3)),
        Err(SchedError::WorkerIdle(WorkerId(3)))
    );
    assert_eq!(
        s.job_finished(WorkerId(4)),
        Err(SchedError::WorkerIdle(WorkerId(4)))
    );
    let err = s.job_finished(WorkerId(5)).unwrap_err();
    assert_eq!(err, SchedError::UnknownWorker(WorkerId(5)));
    assert_eq!(err.to_string(), "worker w5 does not exist");
    s.submit_job(1, Target::Worker).unwrap();
    drain(&mut s);
    s.job_finished(WorkerId(0)).unwrap();
    assert_eq!(
        s.job_finished(WorkerId(0)).unwrap_err().to_string(),
        "worker w0 is not running a job"
    );
    assert_eq!(s.active(), 0);
    assert_eq!(s.stats().idle, 1);
    assert!(s.job_finished(WorkerId(u16::MAX)).is_err());
}

#[test]
fn stats_reflect_every_counter() {
    let mut s = readme();
    let _ = offer_all(&mut s, &["A1", "B1", "B2", "B3", "B4", "B5"]);
    s.submit_reply_job("r").unwrap();
    s.submit_job("j", Target::Worker).unwrap();
    s.add_timer(ms(0), Duration::from_secs(1), true, Target::Worker)
        .unwrap();
    drain(&mut s);
    let st = s.stats();
    assert_eq!(st.max_workers, 9);
    assert_eq!(st.active, 6);
    assert_eq!(st.spawned, 6);
    assert_eq!(st.idle, 0);
    assert_eq!(st.batch_active, 1);
    assert_eq!(st.reply_active, 1);
    assert_eq!(st.commands_queued, 2);
    assert_eq!(st.categories[0].active, 1);
    assert_eq!(st.categories[1].active, 3);
    assert_eq!(st.categories[1].queued, 2);
    assert_eq!(st.live_timers, 1);
    check_invariants(&s);
}

// ----- shutdown -----

#[test]
fn shutdown_stops_idle_workers_at_once_and_busy_ones_as_they_finish() {
    let mut s: Scheduler<u32> = Scheduler::new(
        SchedulerConfig::new(3)
            .with_category(CategoryLimits::new(0, QueueLimit::Unlimited))
            .with_tagged_thread("t"),
    )
    .unwrap();
    for i in 0..5 {
        let _ = s.offer_command(A, i).unwrap();
    }
    s.submit_job(9, Target::Tagged(T0)).unwrap();
    s.submit_job(10, Target::Tagged(T0)).unwrap();
    let batch = s
        .submit_batch(&[Target::Worker], Completion::Worker)
        .unwrap();
    s.add_timer(ms(0), Duration::from_millis(5), true, Target::Worker)
        .unwrap();
    drain(&mut s);
    // w0..w2 run commands, w3 (batch reservation) runs the batch item, tagged runs job 9.
    assert_eq!(s.active(), 4);
    s.submit_reply_job(11).unwrap();
    assert_eq!(
        runs(drain(&mut s)),
        vec![(WorkerId(4), SchedJob::Reply(11))]
    );
    s.job_finished(WorkerId(4)).unwrap();
    assert!(drain(&mut s).is_empty());

    let report = s.shutdown();
    assert_eq!(
        report,
        ShutdownReport {
            commands: 2,
            batch_jobs: 0,
            reply_jobs: 0,
            tagged_jobs: 1,
            timers: 1,
            batches: 1,
            running: 5,
        }
    );
    assert_eq!(
        drain(&mut s),
        vec![SchedOutput::StopWorker {
            worker: WorkerId(4)
        }]
    );
    assert!(s.is_shutting_down() && !s.is_stopped());
    assert_eq!(s.poll_timeout(), None);
    // The batch item finishing runs no completion and reports no BatchDone.
    for w in [3, 0, 1] {
        s.job_finished(WorkerId(w)).unwrap();
        assert_eq!(
            drain(&mut s),
            vec![SchedOutput::StopWorker {
                worker: WorkerId(w)
            }]
        );
    }
    let tw = s.tagged_worker(T0).unwrap();
    s.job_finished(tw).unwrap();
    assert_eq!(drain(&mut s), vec![SchedOutput::StopWorker { worker: tw }]);
    s.job_finished(WorkerId(2)).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![
            SchedOutput::StopWorker {
                worker: WorkerId(2)
            },
            SchedOutput::Stopped
        ]
    );
    assert!(s.is_stopped());
    assert_eq!(s.batch_remaining(batch), None);
    assert_eq!(
        s.job_finished(WorkerId(2)),
        Err(SchedError::WorkerIdle(WorkerId(2)))
    );
    assert!(drain(&mut s).is_empty());
}

#[test]
fn shutdown_when_idle_stops_at_once_and_skips_unspawned_slots() {
    let mut s: Scheduler<u32> =
        Scheduler::new(SchedulerConfig::new(8).with_tagged_thread("t")).unwrap();
    s.submit_job(1, Target::Worker).unwrap();
    s.submit_job(2, Target::Worker).unwrap();
    drain(&mut s);
    s.job_finished(WorkerId(1)).unwrap();
    s.job_finished(WorkerId(0)).unwrap();
    let report = s.shutdown();
    assert_eq!(report, ShutdownReport::default());
    let tw = s.tagged_worker(T0).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![
            SchedOutput::StopWorker {
                worker: WorkerId(0)
            },
            SchedOutput::StopWorker {
                worker: WorkerId(1)
            },
            SchedOutput::StopWorker { worker: tw },
            SchedOutput::Stopped
        ]
    );
}

#[test]
fn nothing_is_accepted_or_dispatched_after_shutdown() {
    let mut s = timer_sched();
    let w = started(s.offer_command(A, 0).unwrap());
    let t = s
        .add_timer(ms(0), Duration::from_millis(10), true, Target::InDriver)
        .unwrap();
    drain(&mut s);
    let _ = s.shutdown();
    assert!(
        drain(&mut s)
            .iter()
            .all(|o| matches!(o, SchedOutput::StopWorker { .. }))
    );
    assert_eq!(s.offer_command(A, 1), Err(SchedError::ShuttingDown));
    assert_eq!(s.inject_task(A, 1), Err(SchedError::ShuttingDown));
    assert_eq!(s.submit_reply_job(1), Err(SchedError::ShuttingDown));
    assert_eq!(
        s.submit_job(1, Target::Worker),
        Err(SchedError::ShuttingDown)
    );
    assert_eq!(
        s.submit_batch(&[Target::Worker], Completion::InDriver),
        Err(SchedError::ShuttingDown)
    );
    assert_eq!(
        s.add_timer(ms(0), Duration::from_millis(1), true, Target::Worker),
        Err(SchedError::ShuttingDown)
    );
    assert_eq!(
        SchedError::ShuttingDown.to_string(),
        "scheduler is shutting down"
    );
    assert!(!s.cancel_timer(t));
    s.handle_timeout(ms(1000));
    assert_eq!(s.shutdown(), ShutdownReport::default());
    assert!(drain(&mut s).is_empty());
    s.job_finished(w).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![SchedOutput::StopWorker { worker: w }, SchedOutput::Stopped]
    );
}

#[test]
fn shutdown_abandons_unfinished_batches_without_completion() {
    let mut s: Scheduler<()> = Scheduler::new(SchedulerConfig::new(2)).unwrap();
    let batch = s
        .submit_batch(&[Target::Worker; 3], Completion::InDriver)
        .unwrap();
    let ws: Vec<_> = runs(drain(&mut s)).iter().map(|&(w, _)| w).collect();
    assert_eq!(ws.len(), 2);
    let report = s.shutdown();
    assert_eq!(
        (report.batch_jobs, report.batches, report.running),
        (1, 1, 2)
    );
    drain(&mut s);
    let outs = finish_all(&mut s, &ws);
    assert!(
        outs.iter()
            .all(|o| matches!(o, SchedOutput::StopWorker { .. } | SchedOutput::Stopped))
    );
    assert_eq!(outs.last(), Some(&SchedOutput::Stopped));
    assert_eq!(s.batch_remaining(batch), None);
}

#[test]
fn queue_limit_converts_oxenmq_signed_form() {
    assert_eq!(QueueLimit::from_oxenmq(-1), QueueLimit::Unlimited);
    assert_eq!(QueueLimit::from_oxenmq(i32::MIN), QueueLimit::Unlimited);
    assert_eq!(QueueLimit::from_oxenmq(0), QueueLimit::At(0));
    assert_eq!(QueueLimit::from_oxenmq(200), QueueLimit::OXENMQ_DEFAULT);
    assert_eq!(QueueLimit::default(), QueueLimit::OXENMQ_DEFAULT);
    assert_eq!(QueueLimit::Unlimited.to_oxenmq(), -1);
    assert_eq!(QueueLimit::At(7).to_oxenmq(), 7);
    assert_eq!(QueueLimit::At(u32::MAX).to_oxenmq(), i32::MAX);
    assert!(!QueueLimit::Unlimited.is_full(usize::MAX));
    assert!(QueueLimit::At(0).is_full(0));
    assert!(!QueueLimit::At(2).is_full(1));
    assert!(QueueLimit::At(2).is_full(2));
}
