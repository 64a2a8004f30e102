//! Attempts: choosing a server, opening the transport, the per-attempt deadline, and what
//! a failed attempt leads to (the next address, the next host, or a wait the pacer plans).

#[allow(
    clippy::wildcard_imports,
    reason = "a part of the session core: the parent's items are its own"
)]
use super::*;

impl Session {
    /// Leaves the `Connecting` phase if `conn` is the connection being opened.
    pub(super) fn take_connecting(&mut self, conn: ConnId) -> Option<(Attempt, Target)> {
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Connecting {
                conn: current,
                attempt,
                target,
            } if current == conn => Some((attempt, target)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    pub(super) fn alloc_conn(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        id
    }

    pub(super) fn alloc_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
        xid
    }

    pub(super) fn conn_is_live(&self, conn: ConnId) -> bool {
        self.current_conn() == Some(conn)
    }

    pub(super) fn begin_attempt(&mut self, now: Instant) {
        self.begin_attempt_on(now, None);
    }

    pub(super) fn begin_attempt_on(&mut self, now: Instant, preferred: Option<HostId>) {
        if self.local_expiry_due {
            self.expire_locally(now);
            return;
        }
        let candidate = match preferred {
            Some(id) => self.hosts.next(now, &mut self.rng).map(|c| {
                // Walk the rotation until the preferred host comes up (bounded by its length).
                let mut c = c;
                for _ in 0..self.hosts.len() {
                    if c.id == id {
                        break;
                    }
                    match self.hosts.next(now, &mut self.rng) {
                        Some(next) => c = next,
                        None => break,
                    }
                }
                c
            }),
            None => self.hosts.next(now, &mut self.rng),
        };
        let Some(Candidate { id, spec }) = candidate else {
            warn!("no hosts to connect to");
            self.finish(now, SessionState::Closed);
            return;
        };
        // A session born on a read-only server is local to it: start a new one elsewhere.
        let sent_session =
            if self.session_id != 0 && (self.session_is_rw || self.cfg.resume.is_some()) {
                self.session_id
            } else {
                0
            };
        let attempt = Attempt {
            host: id,
            spec,
            addrs: VecDeque::new(),
            sent_session,
            started: now,
            extensions: 0,
            handshake_sent: None,
            addr: None,
            span: tracing::Span::none(),
            sasl: sasl::Conversation::default(),
            answered: None,
        };
        self.counters.attempts += 1;
        if let Some(addr) = attempt.spec.socket_addr() {
            let mut attempt = attempt;
            attempt.addrs.push_back(addr);
            self.connect_next_addr(now, attempt);
        } else {
            let conn = self.alloc_conn();
            self.actions.push_back(Action::Resolve {
                conn,
                host: attempt.spec.clone(),
            });
            self.phase = Phase::Resolving { conn, attempt };
            let timeout = self.attempt_timeout(now);
            self.timers.set(Timer::Attempt, now + timeout);
        }
    }

    pub(super) fn connect_next_addr(&mut self, now: Instant, mut attempt: Attempt) {
        let Some(addr) = attempt.addrs.pop_front() else {
            self.attempt_failed(now, attempt, HostFailure::Unresolvable);
            return;
        };
        let conn = self.alloc_conn();
        let target = Target {
            addr,
            server_name: attempt.spec.server_name(),
        };
        let timeout = self.attempt_timeout(now);
        attempt.started = now;
        attempt.extensions = 0;
        attempt.addr = Some(addr);
        attempt.span = tracing::debug_span!(
            parent: &self.failover_span,
            "zk_attempt",
            server = %addr,
            outcome = tracing::field::Empty,
        );
        debug!(conn = conn.0, addr = %addr, ?timeout, "connecting");
        self.actions.push_back(Action::Connect {
            conn,
            target: target.clone(),
            timeout,
        });
        // SASL's first step (which may need the KDC) runs while the transport opens.
        attempt.answered = None;
        attempt.sasl = sasl::Conversation::default();
        if self.cfg.sasl.is_some() {
            attempt.sasl.start();
            self.actions.push_back(Action::Sasl {
                conn,
                server: attempt.spec.server_name(),
                token: None,
            });
        }
        self.timers.set(Timer::Attempt, now + timeout);
        self.phase = Phase::Connecting {
            conn,
            attempt,
            target,
        };
    }

    /// Deadline for one attempt: the per-attempt cap, escalated after failed passes, and
    /// never beyond what is left of the session's server-side lifetime.
    pub(super) fn attempt_timeout(&self, now: Instant) -> Duration {
        let t = self.timeout();
        let base =
            self.cfg.timing.attempt_cap.unwrap_or_else(|| {
                (t / 6).clamp(Duration::from_millis(100), Duration::from_secs(2))
            });
        let cap = base * (1 << self.pacer.slow_passes().min(3));
        match self.last_contact {
            Some(contact) if self.session_id != 0 => {
                let remaining = (contact + t).saturating_duration_since(now);
                remaining.min(cap).max(self.cfg.timing.min_attempt)
            }
            _ => cap,
        }
    }

    /// How long a handshake may take before the server counts as unresponsive, once this
    /// session has seen handshakes succeed: many times the usual handshake time
    /// (`srtt + 4 × rttvar`, ×16), at least [`MIN_HANDSHAKE_BUDGET`], doubled like the cap
    /// after passes that timed out, and never beyond the per-attempt cap. `None` before the
    /// first success (the cap alone applies).
    pub(super) fn handshake_budget(&self) -> Option<Duration> {
        let srtt = self.handshake_rtt.srtt()?;
        let usual = srtt + self.handshake_rtt.rttvar() * 4;
        let budget =
            (usual * 16).max(MIN_HANDSHAKE_BUDGET) * (1 << self.pacer.slow_passes().min(3));
        Some(budget)
    }

    pub(super) fn on_attempt_timeout(&mut self, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Resolving { attempt, .. } => {
                self.attempt_failed(now, attempt, HostFailure::Unresolvable);
            }
            Phase::Handshaking {
                conn,
                mut attempt,
                target,
            } if self.server_seen_working(now, &attempt, target.addr) => {
                attempt.extensions += 1;
                let more = self.attempt_timeout(now);
                debug!(
                    conn = conn.0,
                    addr = %target.addr,
                    ?more,
                    "handshake slow but the server is answering other sessions: waiting longer"
                );
                self.counters.extended_attempts += 1;
                self.timers.set(Timer::Attempt, now + more);
                self.phase = Phase::Handshaking {
                    conn,
                    attempt,
                    target,
                };
            }
            Phase::Connecting { conn, attempt, .. } | Phase::Handshaking { conn, attempt, .. } => {
                debug!(conn = conn.0, host = %attempt.spec, "attempt timed out");
                self.drop_conn(conn);
                // Try the next address of the same name first; then the next host.
                self.attempt_failed(now, attempt, HostFailure::TimedOut);
            }
            other => self.phase = other,
        }
    }

    /// Whether a handshake that timed out deserves more time: another session of the
    /// process completed one on the same address since this attempt began (the server is
    /// alive and working through a queue, not frozen), the attempt was not extended too
    /// often, and the session's server-side lifetime leaves room for another attempt after
    /// the extension.
    pub(super) fn server_seen_working(
        &self,
        now: Instant,
        attempt: &Attempt,
        addr: SocketAddr,
    ) -> bool {
        let Some(shared) = &self.cfg.shared else {
            return false;
        };
        if attempt.extensions >= MAX_EXTENSIONS || !shared.handshake_since(addr, attempt.started) {
            return false;
        }
        match self.last_contact {
            Some(contact) if self.session_id != 0 => {
                let remaining = (contact + self.timeout()).saturating_duration_since(now);
                remaining > self.attempt_timeout(now) * 2
            }
            _ => true,
        }
    }

    /// An attempt on one address failed: next address, next host, or back off.
    pub(super) fn attempt_failed(&mut self, now: Instant, attempt: Attempt, failure: HostFailure) {
        self.timers.stop(Timer::Attempt);
        // A twin taking the session over leaves every server healthy: our handshakes succeed
        // within milliseconds and are cut short. Servers in trouble (a crash, an election, a
        // partition) explain the young connections that were closed instead: a refusal or a
        // timeout shows it at once. A handshake closed before its answer can also be a
        // twin's doing (its handshake on that server overlapping ours, seen several times in
        // a row), so that counts only once the session has gone without a connection for
        // a while — an election closes every attempt for hundreds of milliseconds.
        let trouble = failure != HostFailure::ClosedInHandshake
            || self
                .disconnected_at
                .is_some_and(|at| now.saturating_duration_since(at) >= ELECTION_EVIDENCE);
        if self.takeover_strikes > 0 && trouble {
            debug!(
                target: "zk_session::takeover",
                ?failure,
                strikes = self.takeover_strikes,
                "attempt failed: the servers are in trouble, not taken over"
            );
            self.takeover_strikes = 0;
        }
        // Reads pipelined behind a handshake that failed go back to the queue.
        self.requeue_in_flight(false);
        self.counters.failed_attempts += 1;
        telemetry::attempt(attempt.addr, Some(failure));
        attempt
            .span
            .record("outcome", telemetry::outcome_label(Some(failure)));
        if !attempt.addrs.is_empty() && failure != HostFailure::Unresolvable {
            self.connect_next_addr(now, attempt);
            return;
        }
        self.hosts.on_failure(now, attempt.host, failure);
        if self.local_expiry_due {
            self.expire_locally(now);
            return;
        }
        let estimate = self.election_estimate();
        let seen = Seen {
            hosts: self.hosts.len(),
            lost_at: self.disconnected_at,
            estimate,
        };
        let pace = self
            .pacer
            .on_failure(now, failure, seen, &self.cfg.timing, &mut self.rng);
        let at = match pace {
            Pace::Now => {
                self.begin_attempt(now);
                return;
            }
            Pace::Backoff(delay) => {
                debug!(?delay, "pass failed, backing off");
                now + delay
            }
            Pace::Probe(delay) => {
                self.counters.election_probes += 1;
                telemetry::election_probe();
                debug!(
                    ?delay,
                    probes = self.pacer.election_probes(),
                    learned = estimate.is_some(),
                    "servers electing: next probe planned"
                );
                match &self.cfg.shared {
                    // The whole process keeps its election probes apart.
                    Some(shared) => shared.book_election_retry(now + delay),
                    None => now + delay,
                }
            }
        };
        self.phase = Phase::Waiting;
        self.timers.set(Timer::Backoff, at);
    }

    /// What is known of this ensemble's elections: the process's knowledge when sessions
    /// share it, else this session's own.
    pub(super) fn election_estimate(&self) -> Option<ElectionEstimate> {
        match &self.cfg.shared {
            Some(shared) => shared.election_estimate(),
            None => self.election_estimate,
        }
    }

    pub(super) fn drop_conn(&mut self, conn: ConnId) {
        self.actions.push_back(Action::Close { conn });
        if self.tx_conn == Some(conn) {
            self.tx_conn = None;
            self.tx.clear();
            self.rx.clear();
        }
    }
}
