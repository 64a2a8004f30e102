//! Frames from the server: the handshake's answer (session established, moved, expired or
//! refused) and replies, notifications and oversized frames on an established connection.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of the session core: the parent's items are its own"
)]
use super::*;
use crate::pacing::crowded;

impl Session {
    pub(super) fn handle_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Complete(payload) => {
                if let Phase::Handshaking { attempt, .. } = &self.phase {
                    if attempt.answered.is_some() {
                        self.on_sasl_reply(now, payload);
                    } else {
                        self.on_connect_response(now, payload);
                    }
                } else {
                    self.on_reply(now, payload);
                }
            }
            Frame::Oversized { prefix, len } => self.on_oversized(now, &prefix, len),
            // A frame kind of a newer decoder: not something to guess at.
            other => {
                warn!(?other, "a frame this core does not know");
                self.conn_failed(now, HostFailure::Protocol);
            }
        }
    }

    pub(super) fn on_connect_response(&mut self, now: Instant, payload: Bytes) {
        let Phase::Handshaking {
            conn,
            mut attempt,
            target,
        } = std::mem::replace(&mut self.phase, Phase::Waiting)
        else {
            return;
        };
        let resp = match ConnectResponse::decode_payload(payload) {
            Ok(resp) => resp,
            Err(err) => {
                warn!(%err, addr = %target.addr, "malformed ConnectResponse");
                self.drop_conn(conn);
                self.attempt_failed(now, attempt, HostFailure::Protocol);
                return;
            }
        };
        if resp.timeout <= 0 {
            self.drop_conn(conn);
            if attempt.sent_session == 0 {
                warn!(addr = %target.addr, "server refused to create a session");
                self.attempt_failed(now, attempt, HostFailure::Protocol);
            } else {
                info!(
                    session_id = format_args!("{:#x}", self.session_id),
                    "server says the session expired"
                );
                self.server = Some(target.addr);
                self.finish(
                    now,
                    SessionState::Expired {
                        by: ExpiredBy::Server,
                    },
                );
            }
            return;
        }
        if attempt.sent_session != 0 && resp.session_id != attempt.sent_session {
            warn!(
                sent = format_args!("{:#x}", attempt.sent_session),
                got = format_args!("{:#x}", resp.session_id),
                "server answered with a different session id"
            );
            self.drop_conn(conn);
            self.attempt_failed(now, attempt, HostFailure::Protocol);
            return;
        }
        if attempt.sent_session == 0 {
            if self.session_id != 0 {
                info!(
                    old = format_args!("{:#x}", self.session_id),
                    new = format_args!("{:#x}", resp.session_id),
                    "read-only session replaced by a new session"
                );
            }
            self.session_id = resp.session_id;
            self.passwd = resp.passwd.clone();
        }
        let negotiated = Duration::from_millis(u64::try_from(resp.timeout).unwrap_or(0));
        self.negotiated = Some(negotiated);
        let cap = self.receive_timeout();
        self.hosts.set_max_penalty(cap);
        if !resp.read_only {
            self.session_is_rw = true;
        }
        if !attempt.sasl.is_done() {
            // The session is the server's; it is ours once SASL is done.
            debug!(conn = conn.0, "handshake answered; SASL running");
            self.last_contact = Some(now);
            self.last_recv = now;
            attempt.answered = Some((now, resp.read_only));
            self.phase = Phase::Handshaking {
                conn,
                attempt,
                target,
            };
            return;
        }
        self.established(now, conn, attempt, target, now, resp.read_only);
    }

    /// The handshake (and SASL, if any) succeeded: the session is on `conn`.
    pub(super) fn established(
        &mut self,
        now: Instant,
        conn: ConnId,
        attempt: Attempt,
        target: Target,
        answered: Instant,
        read_only: bool,
    ) {
        let timeout_ms = self.negotiated.map_or(0, |t| t.as_millis());
        self.hosts.on_success(now, attempt.host);
        // Was the server queueing handshakes (a herd reconnecting with us)? Judged against the
        // session's usual handshake, before this one joins the estimate.
        let usual_handshake = self.handshake_rtt.srtt();
        let handshake = attempt
            .handshake_sent
            .map(|sent| answered.saturating_duration_since(sent));
        if let Some(took) = handshake {
            self.handshake_rtt.sample(took);
            telemetry::handshake(target.addr, took);
        }
        telemetry::attempt(Some(target.addr), None);
        attempt.span.record("outcome", "ok");
        if let Some(shared) = &self.cfg.shared {
            shared.handshake_succeeded(target.addr, now);
        }
        self.timers.stop(Timer::Attempt);
        self.timers.stop(Timer::LocalExpiry);
        self.local_expiry_due = false;
        let crowded = handshake.is_some_and(|took| crowded(took, usual_handshake));
        let sent = attempt.handshake_sent.unwrap_or(now);
        if let Some(seen) = self.pacer.on_success(sent, crowded) {
            debug!(
                lo_ms = seen.lo.as_millis(),
                hi_ms = seen.hi.as_millis(),
                crowded,
                "election over: learning its length"
            );
            self.counters.elections_waited += 1;
            telemetry::election_waited();
            match &self.cfg.shared {
                Some(shared) => shared.learn_election(seen),
                None => {
                    self.election_estimate = ElectionEstimate::learn(self.election_estimate, seen);
                }
            }
        }
        self.last_contact = Some(now);
        self.last_recv = now;
        self.ping_sent = None;
        self.server = Some(target.addr);
        if let Some(lost_at) = self.disconnected_at.take() {
            let pause = now.saturating_duration_since(lost_at);
            self.counters.reconnects += 1;
            if self.lost_host != Some(attempt.host) {
                self.counters.failovers += 1;
            }
            self.counters.last_pause = Some(pause);
            self.counters.max_pause = Some(self.counters.max_pause.map_or(pause, |m| m.max(pause)));
            let moved = self.lost_host != Some(attempt.host);
            telemetry::reestablished(pause, moved);
            let span = std::mem::replace(&mut self.failover_span, tracing::Span::none());
            span.record("to", tracing::field::display(target.addr));
            span.record(
                "attempts",
                self.counters.attempts.saturating_sub(self.attempts_at_loss),
            );
            span.record("pause_ms", pause.as_secs_f64() * 1e3);
            info!(
                session_id = format_args!("{:#x}", self.session_id),
                server = %target.addr,
                pause_us = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX),
                "session re-established"
            );
        } else {
            info!(
                session_id = format_args!("{:#x}", self.session_id),
                server = %target.addr,
                timeout_ms,
                "session established"
            );
        }
        // A preamble too large to pipeline goes out now, still before any request.
        self.write_preamble();
        self.phase = Phase::Connected {
            conn,
            host: attempt.host,
            since: now,
            read_only,
        };
        self.set_state(
            now,
            if read_only {
                SessionState::ConnectedReadOnly
            } else {
                SessionState::Connected
            },
        );
        if read_only {
            self.ro_probe_delay = RO_PROBE_MIN;
            self.timers
                .set(Timer::ReadOnlyProbe, now + self.ro_probe_delay);
        } else {
            self.timers.stop(Timer::ReadOnlyProbe);
        }
        self.arm_liveness(now);
    }

    /// The reply header at the front of `payload` (a broken one fails the connection).
    pub(super) fn reply_header(
        &mut self,
        now: Instant,
        payload: &mut Bytes,
    ) -> Option<ReplyHeader> {
        if payload.len() < ReplyHeader::LEN {
            warn!(len = payload.len(), "reply shorter than its header");
            self.conn_failed(now, HostFailure::Protocol);
            return None;
        }
        match ReplyHeader::decode(payload) {
            Ok(h) => {
                self.last_recv = now;
                Some(h)
            }
            Err(err) => {
                warn!(%err, "bad reply header");
                self.conn_failed(now, HostFailure::Protocol);
                None
            }
        }
    }

    pub(super) fn on_reply(&mut self, now: Instant, mut payload: Bytes) {
        let Some(header) = self.reply_header(now, &mut payload) else {
            return;
        };
        if matches!(self.phase, Phase::Connected { .. } | Phase::Closing { .. }) {
            self.last_contact = Some(now);
        }
        if self.sasl_confirm == Some(header.xid) {
            // The answer to the mechanism's last token (`SaslStep::SendLast`).
            self.sasl_confirm = None;
            if self.sasl_verdict(now, header.err) {
                self.arm_liveness(now);
            }
            return;
        }
        if header.err == ErrorCode::SessionClosedRequireSaslAuth {
            // The server enforces SASL and this client did not authenticate (or not with a
            // scheme it accepts): every server would say the same.
            warn!("the server requires SASL authentication");
            self.finish(now, SessionState::AuthFailed);
            return;
        }
        match header.xid {
            zk_proto::xid::NOTIFICATION => {
                self.events
                    .push_back(SessionEvent::Notification { body: payload });
            }
            zk_proto::xid::PING => {
                let Some(sent) = self.ping_sent.take() else {
                    // We never have more than one ping out: a server that answers pings we
                    // did not send is broken (or hostile) and could keep a dead session
                    // looking alive.
                    warn!("unsolicited ping reply");
                    self.conn_failed(now, HostFailure::Protocol);
                    return;
                };
                self.rtt.sample(now.saturating_duration_since(sent));
                // The server's last processed zxid: every notification up to it was sent
                // before this reply, so it is safe to count as seen (and it keeps the
                // SetWatches zxid, hence Resync detection, tight).
                self.bump_zxid(header.zxid);
            }
            xid if xid < 0 => {
                let Some(pos) = self.preamble_pending.iter().position(|&x| x == xid) else {
                    warn!(xid, "reply with an unknown reserved xid");
                    self.conn_failed(now, HostFailure::Protocol);
                    return;
                };
                self.preamble_pending.remove(pos);
                self.bump_zxid(header.zxid);
                if xid == zk_proto::xid::AUTH && header.err == ErrorCode::AuthFailed {
                    warn!("authentication failed");
                    self.finish(now, SessionState::AuthFailed);
                    return;
                }
                self.events.push_back(SessionEvent::PreambleReply {
                    xid,
                    zxid: header.zxid,
                    err: header.err,
                    body: payload,
                    relative_zxid: self.preamble_relative_zxid,
                });
            }
            xid => self.on_request_reply(now, xid, header, payload),
        }
        self.arm_liveness(now);
    }

    pub(super) fn on_request_reply(
        &mut self,
        now: Instant,
        xid: i32,
        header: ReplyHeader,
        body: Bytes,
    ) {
        if let Phase::Closing { xid: close_xid, .. } = self.phase
            && xid == close_xid
        {
            self.bump_zxid(header.zxid);
            self.finish(now, SessionState::Closed);
            return;
        }
        let Some(front) = self.in_flight.front() else {
            warn!(xid, "reply for no request");
            self.conn_failed(now, HostFailure::Protocol);
            return;
        };
        if front.xid != xid {
            // The server authenticates an `auth` packet as soon as it reads it and answers
            // at once, ahead of earlier requests still in its pipeline: the one reply that
            // may overtake others.
            if let Some(pos) = self
                .in_flight
                .iter()
                .position(|f| f.xid == xid && f.req.op == OpCode::Auth)
            {
                if let Some(f) = self.in_flight.remove(pos) {
                    debug!(
                        xid,
                        ahead_of = pos,
                        "auth answered ahead of earlier requests"
                    );
                    self.answered(f, &header, body);
                }
                return;
            }
            warn!(expected = front.xid, got = xid, "reply out of order");
            self.conn_failed(now, HostFailure::Protocol);
            return;
        }
        if header.err == ErrorCode::SessionMoved {
            // The session lives on another server now: this connection is stale. Not a
            // failure of the session; the request is handled like any lost in flight, except
            // that the server told us it was not applied.
            info!("SessionMoved: dropping the stale connection");
            let failed_write = self.in_flight.front_mut().and_then(|f| {
                let fail = !f.abandoned && f.req.idempotence == Idempotence::FailOnLoss;
                f.abandoned |= fail;
                fail.then_some(f.id)
            });
            if let Some(id) = failed_write {
                self.complete(
                    id,
                    Err(RequestError::ConnectionLoss {
                        outcome_unknown: false,
                    }),
                );
            }
            self.conn_failed(now, HostFailure::ConnectionLost);
            return;
        }
        if let Some(f) = self.in_flight.pop_front() {
            self.answered(f, &header, body);
        }
    }

    /// The server answered `f`: its zxid counts as seen, and the caller gets the reply
    /// unless it already gave up on it.
    pub(super) fn answered(&mut self, f: InFlight, header: &ReplyHeader, body: Bytes) {
        self.bump_zxid(header.zxid);
        if !f.abandoned {
            self.complete(
                f.id,
                Ok(Reply {
                    zxid: header.zxid,
                    err: header.err,
                    body,
                }),
            );
        }
    }

    pub(super) fn on_oversized(&mut self, now: Instant, prefix: &Bytes, len: usize) {
        let mut head = prefix.clone();
        let header = if head.len() >= ReplyHeader::LEN {
            ReplyHeader::decode(&mut head).ok()
        } else {
            None
        };
        let Some(header) = header else {
            self.conn_failed(now, HostFailure::Protocol);
            return;
        };
        self.last_recv = now;
        match header.xid {
            zk_proto::xid::NOTIFICATION => {
                warn!(len, "oversized notification discarded");
            }
            xid if self.in_flight.front().is_some_and(|f| f.xid == xid) => {
                if let Some(f) = self.in_flight.pop_front() {
                    self.bump_zxid(header.zxid);
                    warn!(
                        xid,
                        len, "oversized reply discarded; the connection is kept"
                    );
                    if !f.abandoned {
                        let max = self.cfg.max_inbound_frame;
                        self.complete(f.id, Err(RequestError::ResponseTooLarge { len, max }));
                    }
                }
            }
            xid => {
                warn!(xid, len, "oversized frame for no request");
                self.conn_failed(now, HostFailure::Protocol);
                return;
            }
        }
        self.arm_liveness(now);
    }

    pub(super) fn bump_zxid(&mut self, zxid: i64) {
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
    }
}
