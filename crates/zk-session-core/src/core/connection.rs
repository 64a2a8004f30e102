//! The established connection: liveness (pings, the silence detector, the adaptive
//! detector), read-only probing, and losing the connection (take-over detection, requeued
//! reads, local expiry), and how many reply bytes the driver may let gather (reply batching).

#[allow(
    clippy::wildcard_imports,
    reason = "a part of the session core: the parent's items are its own"
)]
use super::*;

impl Session {
    pub(super) fn receive_timeout(&self) -> Duration {
        self.cfg.timing.receive_timeout.of(self.timeout())
    }

    pub(super) fn ping_interval(&self) -> Duration {
        let standard = self.cfg.timing.ping_interval.of(self.receive_timeout());
        match &self.cfg.timing.adaptive {
            Some(a) => standard.min(a.ping_interval),
            None => standard,
        }
        .max(Duration::from_millis(1))
    }

    /// The instant at which silence means the server is gone.
    pub(super) fn receive_deadline(&self) -> Instant {
        let standard = self.last_recv + self.receive_timeout();
        let Some(adaptive) = &self.cfg.timing.adaptive else {
            return standard;
        };
        let oldest = self
            .in_flight
            .front()
            .map(|f| f.sent_at)
            .into_iter()
            .chain(self.ping_sent)
            .min();
        match oldest {
            Some(sent) => standard.min(sent.max(self.last_recv) + self.rtt.threshold(adaptive)),
            None => standard,
        }
    }

    pub(super) fn arm_liveness(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        let _ = now;
        self.timers.set(Timer::Receive, self.receive_deadline());
        self.timers
            .set(Timer::Ping, self.last_send + self.ping_interval());
    }

    pub(super) fn on_ping_timer(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        if self.ping_sent.is_none() && now >= self.last_send + self.ping_interval() {
            let header = RequestHeader {
                xid: zk_proto::xid::PING,
                op: OpCode::Ping,
            };
            self.write_frame(|buf| header.encode(buf));
            self.ping_sent = Some(now);
            self.last_send = now;
        }
        self.arm_liveness(now);
        if self.ping_sent.is_some() && self.timers.get(Timer::Ping).is_some_and(|t| t <= now) {
            // A ping is outstanding; the next one is due after it is answered and the
            // connection idles again.
            self.timers.set(Timer::Ping, now + self.ping_interval());
        }
    }

    pub(super) fn on_receive_timeout(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        if self.receive_deadline() > now {
            self.arm_liveness(now);
            return;
        }
        warn!(
            silent_ms = u64::try_from(now.saturating_duration_since(self.last_recv).as_millis())
                .unwrap_or(u64::MAX),
            "server stopped answering"
        );
        self.counters.detector_trips += 1;
        telemetry::detector_trip(self.server);
        self.conn_failed(now, HostFailure::Frozen);
    }

    pub(super) fn on_ro_probe(&mut self, now: Instant) {
        let Phase::Connected {
            read_only: true,
            host: current,
            ..
        } = self.phase
        else {
            return;
        };
        if self.hosts.len() < 2 {
            return;
        }
        let Some(c) = self.hosts.next(now, &mut self.rng) else {
            return;
        };
        let c = if c.id == current {
            match self.hosts.next(now, &mut self.rng) {
                Some(c) => c,
                None => return,
            }
        } else {
            c
        };
        let probe = self.next_probe;
        self.next_probe += 1;
        self.probe_in_flight = Some((probe, c.id));
        let timeout = self.attempt_timeout(now);
        self.actions.push_back(Action::Probe {
            probe,
            host: c.spec,
            timeout,
        });
        self.ro_probe_delay = (self.ro_probe_delay * 2).min(RO_PROBE_MAX);
        // If the driver never answers, the next timer replaces this probe.
        self.timers
            .set(Timer::ReadOnlyProbe, now + timeout + self.ro_probe_delay);
    }

    /// The current connection (or handshake) failed: clean up and reconnect elsewhere.
    pub(super) fn conn_failed(&mut self, now: Instant, failure: HostFailure) {
        self.conn_failed_towards(now, failure, None);
    }

    pub(super) fn conn_failed_towards(
        &mut self,
        now: Instant,
        failure: HostFailure,
        preferred: Option<HostId>,
    ) {
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Handshaking { conn, attempt, .. } => {
                self.drop_conn(conn);
                self.attempt_failed(now, attempt, failure);
            }
            Phase::Connected {
                conn, host, since, ..
            } => {
                self.hosts.on_failure(now, host, failure);
                self.drop_established(conn);
                // Two clients resuming one session take it from each other; each round
                // shows up here as a young connection closed by the server.
                let window =
                    (self.timeout() / 3).clamp(Duration::from_millis(500), Duration::from_secs(2));
                let age = now.saturating_duration_since(since);
                if failure == HostFailure::ConnectionLost && age < window {
                    self.takeover_strikes += 1;
                } else {
                    self.takeover_strikes = 0;
                }
                debug!(
                    target: "zk_session::takeover",
                    session = format_args!("{:#x}", self.session_id),
                    ?failure,
                    age_ms = age.as_millis(),
                    strikes = self.takeover_strikes,
                    "connection ended"
                );
                if self.takeover_strikes >= self.cfg.takeover_limit {
                    warn!(
                        strikes = self.takeover_strikes,
                        "session keeps being taken over"
                    );
                    self.finish(now, SessionState::TakenOver);
                    return;
                }
                telemetry::connection_lost(self.server, failure);
                self.failover_span = tracing::info_span!(
                    "zk_failover",
                    session = format_args!("{:#x}", self.session_id),
                    from = self.server.map(tracing::field::display),
                    cause = telemetry::outcome_label(Some(failure)),
                    to = tracing::field::Empty,
                    attempts = tracing::field::Empty,
                    pause_ms = tracing::field::Empty,
                    ended = tracing::field::Empty,
                );
                self.reconnect_from(now, Some(host), preferred);
            }
            Phase::Closing { conn, .. } => {
                self.drop_conn(conn);
                self.finish(now, SessionState::Closed);
            }
            other => self.phase = other,
        }
    }

    /// An established connection ends (a failure or a planned move): close it, stop its
    /// timers, and requeue or fail what was in flight on it.
    pub(super) fn drop_established(&mut self, conn: ConnId) {
        self.drop_conn(conn);
        for t in [Timer::Ping, Timer::Receive, Timer::ReadOnlyProbe] {
            self.timers.stop(t);
        }
        self.probe_in_flight = None;
        self.ping_sent = None;
        self.preamble_pending.clear();
        self.requeue_in_flight(true);
    }

    /// The session lost its server (`lost`) at `now`: `Disconnected`, the local-expiry clock
    /// running from the last contact, and a reconnect starting at once (on `preferred`).
    pub(super) fn reconnect_from(
        &mut self,
        now: Instant,
        lost: Option<HostId>,
        preferred: Option<HostId>,
    ) {
        self.disconnected_at = Some(now);
        self.lost_host = lost;
        self.attempts_at_loss = self.counters.attempts;
        self.set_state(now, SessionState::Disconnected);
        if let Some(contact) = self.last_contact {
            let limit = self.cfg.timing.local_expiry.of(self.timeout());
            self.timers.set(Timer::LocalExpiry, contact + limit);
        }
        self.begin_attempt_on(now, preferred);
    }

    /// Moves answers lost with the connection: reads go back to the front of the queue in
    /// order; writes fail with `ConnectionLoss` (outcome unknown).
    pub(super) fn requeue_in_flight(&mut self, established: bool) {
        let mut resend = Vec::new();
        while let Some(f) = self.in_flight.pop_back() {
            if f.abandoned {
                continue;
            }
            match f.req.idempotence {
                Idempotence::Resend => resend.push(Pending {
                    id: f.id,
                    req: f.req,
                }),
                Idempotence::FailOnLoss => {
                    // A write can only have been sent after an established handshake.
                    let outcome_unknown = established;
                    if outcome_unknown {
                        telemetry::outcome_unknown();
                    }
                    self.complete(f.id, Err(RequestError::ConnectionLoss { outcome_unknown }));
                }
            }
        }
        self.counters.resent += resend.len() as u64;
        telemetry::resent(resend.len() as u64);
        for p in resend {
            self.queued.push_front(p);
        }
    }

    pub(super) fn on_local_expiry(&mut self, now: Instant) {
        match self.phase {
            Phase::Connected { .. } | Phase::Closing { .. } | Phase::Terminal | Phase::Idle => {}
            Phase::Handshaking { .. } => {
                // A server may be answering right now: its word is the authority.
                self.local_expiry_due = true;
            }
            Phase::Resolving { .. } | Phase::Connecting { .. } | Phase::Waiting => {
                if let Some(conn) = self.current_conn() {
                    self.drop_conn(conn);
                }
                self.expire_locally(now);
            }
        }
    }

    pub(super) fn on_request_deadlines(&mut self, now: Instant) {
        while let Some(Reverse((at, raw))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let id = RequestId(raw);
            if let Some(pos) = self.queued.iter().position(|p| p.id == id) {
                self.queued.remove(pos);
                self.complete(id, Err(RequestError::Timeout));
            } else if let Some(f) = self
                .in_flight
                .iter_mut()
                .find(|f| f.id == id && !f.abandoned)
            {
                f.abandoned = true;
                self.complete(id, Err(RequestError::Timeout));
            }
        }
        self.arm_request_timer();
    }

    pub(super) fn arm_request_timer(&mut self) {
        match self.deadlines.peek() {
            Some(Reverse((at, _))) => self.timers.set(Timer::Request, *at),
            None => self.timers.stop(Timer::Request),
        }
    }

    // ----- Reply batching -----

    /// How many bytes the driver may let the transport gather before waking it (a socket's
    /// receive low-water mark; 1 = wake for any byte). With many requests in flight on an
    /// established connection (and [`SessionConfig::reply_batching`] on) it is the smallest
    /// possible answers to half of them, rounded down to a power of two and at most 16 KiB:
    /// that many bytes are certain to arrive (every request written is answered), so no
    /// reply waits for bytes that never come. Never during a handshake, and 1 again for a
    /// while once replies have been held back 1 ms without a byte (the core's batch timer).
    /// A driver applies it only while every request the core handed it is written.
    #[must_use]
    pub fn receive_hint(&self) -> usize {
        let n = self.in_flight.len();
        if self.batch_paused
            || n < BATCH_MIN_IN_FLIGHT
            || !self.cfg.reply_batching
            || !matches!(self.phase, Phase::Connected { .. })
        {
            return 1;
        }
        let sure = ((n - 1) * MIN_REPLY_FRAME / 2).min(BATCH_MAX_BYTES);
        1 << sure.ilog2()
    }

    /// Arms the batch timer while replies may be held back, and stops it otherwise.
    pub(super) fn rearm_batching(&mut self, now: Instant) {
        if self.receive_hint() > 1 {
            if self.timers.get(Timer::Batch).is_none() {
                self.timers.set(Timer::Batch, now + BATCH_MAX_WAIT);
            }
        } else {
            self.timers.stop(Timer::Batch);
        }
    }
}
