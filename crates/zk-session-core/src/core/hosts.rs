//! Host lists that change (a reconfiguration, a rolling replacement): the new list goes to
//! the host provider, which decides whether this session moves (ZOOKEEPER-1355); a move is an
//! ordinary session-keeping reconnect at a random moment within a window.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of the session core: the parent's items are its own"
)]
use super::*;

/// Why a host list was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostsError {
    /// The new list is empty.
    #[error("an empty host list")]
    Empty,
    /// The host provider cannot change its list.
    #[error("this host provider cannot change its list")]
    Unsupported,
    /// The session has ended.
    #[error("the session has ended")]
    Ended,
}

/// How often a planned move waits for writes in flight to be answered before it goes.
const MOVE_RECHECK: Duration = Duration::from_millis(10);

impl Session {
    /// Replaces the host list (compared as a set with the current one: order and duplicates
    /// do not count). Hosts in both lists keep their health. When the session's server left
    /// the list the session moves to another within a fifth of
    /// [`Timing::rebalance_spread`](crate::Timing::rebalance_spread); when the list grew it
    /// moves to a new server with probability 1 − old/new within the whole window — an
    /// ordinary reconnect of the same session (watches kept, reads re-sent, no write in
    /// flight abandoned). Returns whether the list changed.
    ///
    /// # Errors
    /// [`HostsError`]: an empty list, a provider that cannot change, an ended session.
    pub fn update_hosts(&mut self, now: Instant, hosts: Vec<HostSpec>) -> Result<bool, HostsError> {
        if self.state.is_terminal() {
            return Err(HostsError::Ended);
        }
        let mut new: Vec<HostSpec> = Vec::with_capacity(hosts.len());
        for h in hosts {
            if !new.contains(&h) {
                new.push(h);
            }
        }
        if new.is_empty() {
            return Err(HostsError::Empty);
        }
        let old = self.hosts.hosts();
        if old.is_empty() {
            return Err(HostsError::Unsupported);
        }
        if old.len() == new.len() && new.iter().all(|h| old.contains(h)) {
            return Ok(false);
        }
        let connected = match self.phase {
            Phase::Connected { host, .. } => Some(host),
            _ => None,
        };
        // The spec of the host of an attempt in progress, to find it in the new list.
        let attempt_spec = self.attempt_host().and_then(|id| old.get(id).cloned());
        let decision = self.hosts.update(new.clone(), connected, &mut self.rng);
        if decision == Rebalance::Unsupported {
            return Err(HostsError::Unsupported);
        }
        self.counters.host_updates += 1;
        info!(
            hosts = new.len(),
            before = old.len(),
            ?decision,
            "host list changed"
        );
        // Ids of the old list mean nothing now.
        self.lost_host = None;
        self.probe_in_flight = None;
        self.rebalance_to = None;
        self.timers.stop(Timer::Rebalance);
        let current = match decision {
            Rebalance::Stay { current } | Rebalance::Move { current, .. } => current,
            Rebalance::Unsupported => None,
        };
        if let Phase::Connected { host, .. } = &mut self.phase {
            // Off the list: the id must not point at another host until the move.
            *host = current.unwrap_or(usize::MAX);
        }
        if let Some(spec) = attempt_spec {
            match new.iter().position(|h| *h == spec) {
                Some(id) => self.set_attempt_host(id),
                // The attempt's host left: start over on the new list.
                None => self.restart_attempt(now),
            }
        }
        if let Rebalance::Move { current, to } = decision
            && connected.is_some()
        {
            let window = self.cfg.timing.rebalance_spread;
            let window = if current.is_none() {
                window / 5
            } else {
                window
            };
            let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1);
            let delay = Duration::from_nanos(self.rng.below(nanos));
            debug!(to, ?delay, "moving to rebalance");
            self.rebalance_to = Some(to);
            self.timers.set(Timer::Rebalance, now + delay);
        }
        Ok(true)
    }

    /// The planned move: leave the server for `rebalance_to` as soon as no write is in
    /// flight (a write whose answer a deliberate move would lose is never risked).
    pub(super) fn on_rebalance(&mut self, now: Instant) {
        let Some(to) = self.rebalance_to else {
            return;
        };
        let Phase::Connected { conn, host, .. } = self.phase else {
            // Lost meanwhile: the reconnect chooses among the new hosts anyway.
            self.rebalance_to = None;
            return;
        };
        let writes = self
            .in_flight
            .iter()
            .any(|f| !f.abandoned && f.req.idempotence == Idempotence::FailOnLoss);
        if writes || !self.preamble_pending.is_empty() {
            self.timers.set(Timer::Rebalance, now + MOVE_RECHECK);
            return;
        }
        self.rebalance_to = None;
        self.counters.rebalances += 1;
        info!(from = ?self.server, to, "moving to another server (host list changed)");
        self.phase = Phase::Waiting;
        self.drop_established(conn);
        self.reconnect_from(now, (host != usize::MAX).then_some(host), Some(to));
    }

    /// The host of the attempt in progress, if any.
    fn attempt_host(&self) -> Option<HostId> {
        match &self.phase {
            Phase::Resolving { attempt, .. }
            | Phase::Connecting { attempt, .. }
            | Phase::Handshaking { attempt, .. } => Some(attempt.host),
            _ => None,
        }
    }

    fn set_attempt_host(&mut self, id: HostId) {
        if let Phase::Resolving { attempt, .. }
        | Phase::Connecting { attempt, .. }
        | Phase::Handshaking { attempt, .. } = &mut self.phase
        {
            attempt.host = id;
        }
    }

    /// Abandons the attempt in progress and begins another on the current list.
    fn restart_attempt(&mut self, now: Instant) {
        if let Some(conn) = self.current_conn() {
            self.drop_conn(conn);
        }
        self.requeue_in_flight(false);
        self.phase = Phase::Waiting;
        self.timers.stop(Timer::Attempt);
        self.begin_attempt(now);
    }
}
