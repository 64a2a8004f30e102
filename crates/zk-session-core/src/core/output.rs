//! Output: writing requests and the preamble, request deadlines, completions and the state
//! changes the application sees.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of the session core: the parent's items are its own"
)]
use super::*;

impl Session {
    /// Appends one frame to the transmit buffer; `false` if it exceeded the outbound limit.
    pub(super) fn write_frame(&mut self, body: impl FnOnce(&mut BytesMut)) -> bool {
        zk_proto::write_frame(&mut self.tx, self.cfg.max_outbound_frame, body).is_ok()
    }

    pub(super) fn send_request(&mut self, now: Instant, p: Pending) {
        let xid = self.alloc_xid();
        let header = RequestHeader { xid, op: p.req.op };
        let body = p.req.body.clone();
        if self.write_frame(|buf| {
            header.encode(buf);
            buf.put_slice(&body);
        }) {
            self.in_flight.push_back(InFlight {
                id: p.id,
                xid,
                req: p.req,
                sent_at: now,
                abandoned: false,
            });
            self.last_send = now;
        } else {
            let len = RequestHeader::LEN + p.req.body.len();
            self.complete(
                p.id,
                Err(RequestError::RequestTooLarge {
                    len,
                    max: self.cfg.max_outbound_frame,
                }),
            );
        }
    }

    /// The encoded size of the preamble packets not yet written.
    pub(super) fn deferred_preamble_len(&self) -> usize {
        self.deferred_preamble
            .iter()
            .map(|p| p.body.len() + RequestHeader::LEN + 4)
            .sum()
    }

    /// Writes the preamble packets built for this connection.
    pub(super) fn write_preamble(&mut self) {
        for p in std::mem::take(&mut self.deferred_preamble) {
            let header = RequestHeader {
                xid: p.xid,
                op: p.op,
            };
            let ok = self.write_frame(|buf| {
                header.encode(buf);
                buf.put_slice(&p.body);
            });
            if ok {
                self.preamble_pending.push_back(p.xid);
            } else {
                warn!(
                    xid = p.xid,
                    len = p.body.len(),
                    "preamble packet too large, not sent"
                );
            }
        }
    }

    /// Writes queued requests while connected and the window allows.
    pub(super) fn flush(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        let before = self.in_flight.len();
        while self.in_flight.len() < self.cfg.max_in_flight {
            let Some(p) = self.queued.pop_front() else {
                break;
            };
            self.send_request(now, p);
        }
        if self.in_flight.len() != before {
            self.arm_liveness(now);
        }
    }

    /// During a handshake: pipelines the leading reads of the queue.
    pub(super) fn flush_idempotent_prefix(&mut self, now: Instant) {
        while self.in_flight.len() < self.cfg.max_in_flight {
            match self.queued.front() {
                Some(p) if p.req.idempotence == Idempotence::Resend => {
                    if let Some(p) = self.queued.pop_front() {
                        self.send_request(now, p);
                    }
                }
                _ => break,
            }
        }
    }

    pub(super) fn complete(&mut self, id: RequestId, result: Result<Reply, RequestError>) {
        self.events
            .push_back(SessionEvent::Completed { id, result });
    }

    pub(super) fn set_state(&mut self, now: Instant, state: SessionState) {
        if self.state == state {
            return;
        }
        telemetry::state(Some(self.state), Some(state));
        self.state = state;
        self.events.push_back(SessionEvent::State(StateChange {
            state,
            session_id: self.session_id,
            server: self.server,
            at: now,
        }));
    }

    pub(super) fn terminal_error(&self) -> Option<RequestError> {
        self.state.terminal_error()
    }

    /// No server can still hold the session: terminal `Expired { by: Local }`.
    pub(super) fn expire_locally(&mut self, now: Instant) {
        self.finish(
            now,
            SessionState::Expired {
                by: ExpiredBy::Local,
            },
        );
    }

    /// Enters a terminal state: fails everything outstanding and stops all timers.
    pub(super) fn finish(&mut self, now: Instant, state: SessionState) {
        if let Some(conn) = self.current_conn() {
            self.drop_conn(conn);
        }
        // A failover that never finished ends with the session.
        let span = std::mem::replace(&mut self.failover_span, tracing::Span::none());
        span.record("ended", telemetry::state_label(state));
        self.phase = Phase::Terminal;
        for t in Timer::VALUES {
            self.timers.stop(t);
        }
        self.set_state(now, state);
        let err = self.terminal_error().unwrap_or(RequestError::Closed);
        let outstanding: Vec<RequestId> = self
            .in_flight
            .drain(..)
            .filter(|f| !f.abandoned)
            .map(|f| f.id)
            .chain(self.queued.drain(..).map(|p| p.id))
            .collect();
        for id in outstanding {
            self.complete(id, Err(err.clone()));
        }
        self.deadlines.clear();
        self.preamble_pending.clear();
        self.tx.clear();
        self.tx_conn = None;
    }
}

/// 4. Outputs: what the driver must do next (see the module docs of `core`).
impl Session {
    /// The next I/O action, if any.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Bytes to write on the current connection, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        if self.tx.is_empty() {
            return None;
        }
        let conn = self.tx_conn?;
        Some((conn, self.tx.split().freeze()))
    }

    /// The next event for the application layer, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The next output in the order a driver must carry them out: actions (resolve,
    /// connect, close) before bytes for the current connection, bytes before events. Calling
    /// it until `None` after every input is the whole drain loop; the `poll_action`,
    /// `poll_transmit` and `poll_event` it is made of stay available.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(action) = self.poll_action() {
            return Some(Output::Action(action));
        }
        if let Some((conn, data)) = self.poll_transmit() {
            return Some(Output::Transmit { conn, data });
        }
        self.poll_event().map(Output::Event)
    }

    /// When [`Session::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }
}

impl Drop for Session {
    /// A session dropped before it ended leaves the process's session gauge.
    fn drop(&mut self) {
        if !self.state.is_terminal() {
            telemetry::state(Some(self.state), None);
        }
    }
}
