//! How the simulator acts for a node's driver: events become inputs, outputs become network
//! actions, jobs run as scripted handlers, and handler actions are applied when jobs finish.

use lokimq_core::auth::AuthLevel;
use lokimq_core::ids::WorkerId;
use lokimq_core::node::{ConnectionId, DisconnectCause, Event, Input, Job, Output};
use lokimq_core::session::{Session, SessionEvent};
use lokimq_core::time::Duration;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::node::{AuthRecord, Busy, DisconnectRecord, JobKind, JobRecord};
use super::script::{Action, Ctx};
use super::tap::Tap;
use super::{Ev, Sim, parts, show_bytes};
use crate::net::{Delivery, End, ListenTarget, NetEv};

impl Sim {
    // -----------------------------------------------------------------------------------------
    // event processing

    pub(crate) fn process(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Net(NetEv::Dial { pipe }) => {
                let Some(target) = self
                    .net
                    .syn_arrived(now, &mut self.rng, &mut self.queue, pipe)
                else {
                    return;
                };
                let acceptor = match target {
                    ListenTarget::Node(m, l) => {
                        let remote = self.net.config.remote_ip.clone();
                        let r = self.nodes[m].node.accept(now, l, &remote);
                        self.record(
                            &format!("n{m}"),
                            format!("> accept {l:?} from {remote} -> {r:?}"),
                        );
                        match r {
                            Ok(c) => {
                                self.nodes[m].open_conns.insert(c);
                                End::Node(m, c)
                            }
                            Err(e) => {
                                self.queue.push(
                                    now,
                                    NetEv::DialFailed {
                                        pipe,
                                        // The driver refuses what the node will not accept.
                                        cause: {
                                            let _ = e;
                                            DisconnectCause::Refused
                                        },
                                    },
                                );
                                return;
                            }
                        }
                    }
                    ListenTarget::Tap(l) => {
                        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
                        let cfg = self.tap_listeners[l].session_config.clone();
                        self.taps.push(Tap::new(rng, cfg));
                        let t = self.taps.len() - 1;
                        self.taps[t].listener = Some(l);
                        self.tap_listeners[l].accepted.push(t);
                        End::Tap(t)
                    }
                };
                let dialer = self.net.accepted(pipe, acceptor);
                match acceptor {
                    End::Node(m, _) => self.drain(m),
                    End::Tap(t) => self.tap_connected(t),
                }
                match dialer {
                    Some(End::Node(n, conn)) => self.input(n, Input::Connected { conn }),
                    Some(End::Tap(t)) => self.tap_connected(t),
                    None => {}
                }
            }
            Ev::Net(NetEv::DialFailed { pipe, cause }) => match self.net.dial_failed(pipe) {
                Some(End::Node(n, conn)) if self.nodes[n].open_conns.remove(&conn) => {
                    self.input(n, Input::Disconnected { conn, cause });
                }
                Some(End::Tap(t)) => {
                    self.record(&format!("tap{t}"), format!("dial failed: {cause}"));
                    self.taps[t].failed = Some((now, cause));
                }
                Some(End::Node(..)) | None => {}
            },
            Ev::Net(NetEv::Deliver { pipe, dir, chunk }) => {
                match self.net.take(now, pipe, dir, chunk) {
                    Some(Delivery::Data(End::Node(n, conn), data)) => {
                        self.input(n, Input::Received { conn, data });
                    }
                    Some(Delivery::Data(End::Tap(t), data)) => self.tap_receive(t, &data),
                    Some(Delivery::Fin(End::Node(n, conn))) => {
                        if self.nodes[n].open_conns.remove(&conn) {
                            self.input(
                                n,
                                Input::Disconnected {
                                    conn,
                                    cause: DisconnectCause::Eof,
                                },
                            );
                        }
                        // The driver drops a socket that reached EOF: the peer sees our FIN too.
                        self.net.close(
                            now,
                            &mut self.rng,
                            &mut self.queue,
                            End::Node(n, conn),
                            false,
                        );
                    }
                    Some(Delivery::Fin(End::Tap(t))) => {
                        self.record(&format!("tap{t}"), "eof".to_string());
                        self.taps[t].eof_at = Some(now);
                        // EOF: the tap closes (or finishes closing) its end.
                        self.taps[t].closed = true;
                        self.net
                            .close(now, &mut self.rng, &mut self.queue, End::Tap(t), false);
                    }
                    None => {}
                }
            }
            Ev::Net(NetEv::Reset { end, cause }) => match end {
                End::Node(n, conn) => {
                    if self.nodes[n].open_conns.remove(&conn) {
                        self.input(n, Input::Disconnected { conn, cause });
                    }
                }
                End::Tap(t) => {
                    self.record(&format!("tap{t}"), format!("reset: {cause}"));
                    self.taps[t].failed = Some((now, cause));
                    self.taps[t].closed = true;
                }
            },
            Ev::JobDone { node, worker } => self.finish_job(node, worker),
            Ev::Later { node, f } => {
                let mut ctx = Ctx::new(now, node, self.nodes[node].pubkey);
                f(&mut ctx);
                for a in ctx.actions {
                    self.apply(node, a);
                }
            }
            Ev::Call(f) => f(self),
        }
    }

    pub(crate) fn tap_connected(&mut self, t: usize) {
        let now = self.now;
        self.record(&format!("tap{t}"), "connected".to_string());
        self.taps[t].connected_at = Some(now);
        if let Some(cfg) = self.taps[t].session_config.clone() {
            let tap = &mut self.taps[t];
            match Session::new(cfg, now, &mut tap.rng) {
                Ok(mut s) => {
                    for frames in tap.pending_frames.drain(..) {
                        // Queued until the handshake completes; the bound is libzmq's HWM.
                        let _ = s.send(now, frames);
                    }
                    tap.session = Some(s);
                }
                Err(e) => self.fail(&format!("tap {t}: bad session config: {e}")),
            }
        }
        let pending = std::mem::take(&mut self.taps[t].pending_bytes);
        for data in pending {
            self.net
                .transmit(now, &mut self.rng, &mut self.queue, End::Tap(t), data);
        }
        self.flush_tap(t);
    }

    pub(crate) fn tap_receive(&mut self, t: usize, data: &[u8]) {
        let now = self.now;
        self.record(&format!("tap{t}"), format!("> {}", show_bytes(data)));
        let tap = &mut self.taps[t];
        tap.received.extend_from_slice(data);
        if let Some(s) = tap.session.as_mut() {
            s.handle_bytes(now, data, &mut tap.rng);
        }
        self.flush_tap(t);
    }

    pub(crate) fn flush_tap(&mut self, t: usize) {
        let now = self.now;
        loop {
            let Some(s) = self.taps[t].session.as_mut() else {
                return;
            };
            if let Some(data) = s.poll_transmit() {
                self.net
                    .transmit(now, &mut self.rng, &mut self.queue, End::Tap(t), data);
                continue;
            }
            let Some(ev) = s.poll_event() else {
                return;
            };
            match ev {
                SessionEvent::Message(m) => {
                    self.record(&format!("tap{t}"), format!("message {}", parts(&m)));
                    self.taps[t].messages.push(m);
                }
                SessionEvent::Ready => self.taps[t].ready_at = Some(now),
                SessionEvent::Closed(e) => {
                    self.record(&format!("tap{t}"), format!("session closed: {e}"));
                    self.taps[t].session_closed = Some(e);
                }
                other => self.record(&format!("tap{t}"), format!("session event {other:?}")),
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // node driving

    /// Feeds an input to node `n` and drains it.
    pub(crate) fn input(&mut self, n: usize, input: Input) {
        self.handle_raw(n, input);
        self.drain(n);
    }

    pub(crate) fn handle_raw(&mut self, n: usize, input: Input) {
        let now = self.now;
        let text = match &input {
            Input::Received { conn, data } => format!("Received {conn:?} {}", show_bytes(data)),
            other => format!("{other:?}"),
        };
        self.record(&format!("n{n}"), format!("> {text}"));
        if let Err(e) = self.nodes[n].node.handle(now, input) {
            self.fail(&format!("node {n} refused a simulator input: {e}"));
        }
    }

    /// Drains node `n`'s outputs, acting on each.
    pub(crate) fn drain(&mut self, n: usize) {
        let now = self.now;
        let mut count = 0u64;
        while let Some(out) = self.nodes[n].node.poll_output() {
            count += 1;
            if count > 10_000_000 {
                self.fail(&format!(
                    "node {n} produced more than 10^7 outputs in one drain"
                ));
            }
            let text = match &out {
                Output::Transmit { conn, data } => {
                    format!("Transmit {conn:?} {}", show_bytes(data))
                }
                other => format!("{other:?}"),
            };
            self.record(&format!("n{n}"), format!("< {text}"));
            match out {
                Output::Transmit { conn, data } => {
                    self.net.transmit(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        data,
                    );
                }
                Output::Connect { conn, addr } => {
                    self.nodes[n].open_conns.insert(conn);
                    self.nodes[n].dials.push((now, conn, addr.clone()));
                    self.net.dial(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        &addr.zmq_address(),
                    );
                }
                Output::Close { conn, linger } => {
                    self.nodes[n].open_conns.remove(&conn);
                    self.nodes[n].closes.push((now, conn, linger));
                    self.net.close(
                        now,
                        &mut self.rng,
                        &mut self.queue,
                        End::Node(n, conn),
                        false,
                    );
                }
                Output::Listen { listener, addr } => {
                    self.nodes[n].listeners.insert(listener, addr.clone());
                    if !self
                        .net
                        .bind(addr.zmq_address(), ListenTarget::Node(n, listener))
                    {
                        self.handle_raw(
                            n,
                            Input::ListenFailed {
                                listener,
                                reason: "Address already in use".to_string(),
                            },
                        );
                    }
                }
                Output::RunJob { worker, job } => self.run_job(n, worker, job),
                Output::StopWorker { worker } => {
                    if self.nodes[n].busy.contains_key(&worker) {
                        self.fail(&format!(
                            "core bug: node {n}: StopWorker for busy {worker:?}"
                        ));
                    }
                    self.nodes[n].stopped_workers.push((now, worker));
                }
                Output::Unlisten { listener } => {
                    self.nodes[n].listeners.remove(&listener);
                    self.net.unbind(n, listener);
                }
                Output::Event(e) => self.on_event(n, e),
            }
        }
        self.nodes[n].timeout = self.nodes[n].node.poll_timeout();
        self.dirty.insert(n);
    }

    pub(crate) fn on_event(&mut self, n: usize, e: Event) {
        let now = self.now;
        match e {
            Event::AuthRequest {
                conn,
                listener,
                remote,
                pubkey,
                service_node,
            } => {
                let level = match self.nodes[n].allow.get_mut(&listener) {
                    Some(f) => f(&remote, pubkey.as_ref(), service_node),
                    None => AuthLevel::None,
                };
                self.nodes[n].auth_requests.push(AuthRecord {
                    at: now,
                    conn,
                    listener,
                    remote,
                    pubkey,
                    service_node,
                    level,
                });
                self.handle_raw(n, Input::AuthDecision { conn, level });
            }
            Event::LookupSn { pubkey } => {
                self.nodes[n].lookups.push((now, pubkey));
                let address = self.nodes[n].address_book.get(&pubkey).cloned();
                self.handle_raw(n, Input::SnAddress { pubkey, address });
            }
            Event::RunInDriver(d) => self.nodes[n].in_driver.push((now, d)),
            Event::BatchDone { batch } => self.nodes[n].batch_done.push((now, batch)),
            Event::TimerReleased { timer } => self.nodes[n].timer_released.push((now, timer)),
            Event::Dropped { category, .. } => self.nodes[n].dropped.push((now, category)),
            Event::PeerDisconnected {
                conn,
                pubkey,
                cause,
                reconnecting,
            } => self.nodes[n].disconnects.push(DisconnectRecord {
                at: now,
                conn,
                pubkey,
                cause,
                reconnecting,
            }),
            Event::LinkFailed { conn, error } => {
                self.nodes[n].link_failures.push((now, conn, error));
            }
            Event::Stopped => {
                if self.nodes[n].stopped.is_some() {
                    self.fail(&format!("core bug: node {n}: Event::Stopped twice"));
                }
                self.nodes[n].stopped = Some(now);
                // The driver frees everything, listening sockets included.
                self.net.unbind_node(n);
            }
            other => {
                let text = format!("{other:?}");
                self.nodes[n].events.push((now, text));
            }
        }
    }

    pub(crate) fn run_job(&mut self, n: usize, worker: WorkerId, job: Job) {
        let now = self.now;
        if self.nodes[n].busy.contains_key(&worker) {
            self.fail(&format!("core bug: node {n}: RunJob on busy {worker:?}"));
        }
        if self.nodes[n].stopped.is_some() {
            self.fail(&format!("core bug: node {n}: RunJob after Event::Stopped"));
        }
        let mut ctx = Ctx::new(now, n, self.nodes[n].pubkey);
        let times = self.nodes[n].job_times.clone();
        let (kind, policy) = match job {
            Job::Command { command, message } => {
                let (name, category) = {
                    let c = self.nodes[n].node.registry().command(command);
                    (c.full_name().to_string(), c.category())
                };
                if let ConnectionId::Sn(pk) = &message.conn {
                    self.note_activity(n, *pk, Duration::ZERO);
                }
                if let Some(mut h) = self.nodes[n].handlers.remove(&command) {
                    h(&mut ctx, &message);
                    self.nodes[n].handlers.insert(command, h);
                }
                let policy = times
                    .per_command
                    .get(&name)
                    .copied()
                    .unwrap_or(times.command);
                let kind = JobKind::Command {
                    name: name.clone(),
                    category,
                    conn: message.conn.clone(),
                    data: message.data.clone(),
                };
                self.nodes[n].commands.push((now, name, message));
                (kind, policy)
            }
            Job::Reply { request, result } => {
                match self.nodes[n].requests.get_mut(&request) {
                    Some(r) => {
                        r.outcomes.push((now, result.clone()));
                        if r.outcomes.len() > 1 {
                            let msg = format!(
                                "core bug: node {n}: request {request:?} got a second outcome: {:?}",
                                r.outcomes
                            );
                            self.fail(&msg);
                        }
                    }
                    None => {
                        self.nodes[n].stray_replies.push((now, request));
                        self.fail(&format!(
                            "core bug: node {n}: reply job for unknown request {request:?}"
                        ));
                    }
                }
                if let Some(f) = self.nodes[n].reply_fns.remove(&request) {
                    f(&mut ctx, &result);
                }
                (JobKind::Reply(request), times.reply)
            }
            Job::Connected { conn } => {
                self.nodes[n].connected.push((now, conn.clone()));
                if let Some(mut f) = self.nodes[n].on_connect.take() {
                    f(&mut ctx, &conn);
                    self.nodes[n].on_connect = Some(f);
                }
                (JobKind::Connected(conn), times.other)
            }
            Job::ConnectFailed { conn, error } => {
                self.nodes[n]
                    .connect_failed
                    .push((now, conn.clone(), error.to_string()));
                self.nodes[n]
                    .connect_errors
                    .push((now, conn.clone(), error));
                (JobKind::ConnectFailed(conn), times.other)
            }
            Job::BatchItem { batch, index } => (JobKind::BatchItem(batch, index), times.other),
            Job::Completion { batch } => (JobKind::Completion(batch), times.other),
            Job::Timer { timer } => (JobKind::Timer(timer), times.other),
            Job::Task { category, task } => (JobKind::Task(category, task), times.other),
            Job::Job { job } => (JobKind::Job(job), times.other),
        };
        let d = ctx.duration.unwrap_or_else(|| policy.sample(&mut self.rng));
        let record = self.nodes[n].jobs.len();
        self.nodes[n].jobs.push(JobRecord {
            worker,
            kind,
            started: now,
            finished: None,
        });
        self.nodes[n].busy.insert(
            worker,
            Busy {
                record,
                actions: ctx.actions,
            },
        );
        self.queue.push(now + d, Ev::JobDone { node: n, worker });
    }

    pub(crate) fn finish_job(&mut self, n: usize, worker: WorkerId) {
        let now = self.now;
        let Some(busy) = self.nodes[n].busy.remove(&worker) else {
            self.fail(&format!("harness bug: node {n}: {worker:?} finished twice"));
        };
        self.nodes[n].jobs[busy.record].finished = Some(now);
        for a in busy.actions {
            self.apply(n, a);
        }
        self.input(n, Input::JobFinished { worker });
    }

    /// Applies a scripted action on node `n` now.
    pub fn apply(&mut self, n: usize, action: Action) {
        let now = self.now;
        match action {
            Action::Reply { to, data } => {
                if let ConnectionId::Sn(pk) = to.conn() {
                    let ka = self.nodes[n].node.config().send_keep_alive;
                    self.note_activity(n, *pk, ka);
                }
                self.record(
                    &format!("n{n}"),
                    format!("app reply {:?} {}", to.conn(), parts(&data)),
                );
                let r = self.nodes[n].node.reply(now, &to, data);
                if let Err(e) = r {
                    self.nodes[n].send_errors.push((now, to.conn().clone(), e));
                }
                self.drain(n);
            }
            Action::SendBack { to, command, data } => {
                if let ConnectionId::Sn(pk) = to.conn() {
                    let ka = self.nodes[n].node.config().send_keep_alive;
                    self.note_activity(n, *pk, ka);
                }
                self.record(
                    &format!("n{n}"),
                    format!("app send_back {:?} {command:?} {}", to.conn(), parts(&data)),
                );
                let r = self.nodes[n].node.send_back(now, &to, command, data);
                if let Err(e) = r {
                    self.nodes[n].send_errors.push((now, to.conn().clone(), e));
                }
                self.drain(n);
            }
            Action::Send {
                to,
                command,
                data,
                opts,
            } => {
                // Refusals are recorded in `send_errors`.
                let _ = self.send_bytes(n, &to, command, data, &opts);
            }
            Action::Request {
                to,
                command,
                data,
                opts,
                then,
            } => {
                // Refusals are recorded in `send_errors` (and `then` runs with TIMEOUT).
                let _ = self.request_inner(n, &to, command, data, &opts, then);
            }
            Action::Node(f) => {
                self.record(&format!("n{n}"), "app (node closure)".to_string());
                f(&mut self.nodes[n].node, now);
                self.drain(n);
            }
            Action::Later { delay, f } => self.queue.push(now + delay, Ev::Later { node: n, f }),
        }
    }
}
