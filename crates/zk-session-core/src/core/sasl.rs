//! SASL on a connection attempt (see [`crate::sasl`] for the division of labour): the
//! conversation's bookkeeping, the driver's steps, the server's answers, and the hand-over to
//! an established session once the mechanism is done.
//!
//! A mechanism may pipeline: [`SaslStep::SendAll`] writes several tokens at once, and the
//! server's answers are then handed to the mechanism one by one, in order (all but the last
//! answered with [`SaslStep::Wait`]). Answers that arrive while the driver runs a step wait
//! in the conversation.

#[allow(
    clippy::wildcard_imports,
    reason = "a part of the session core: the parent's items are its own"
)]
use super::*;
use crate::{SaslError, SaslStep};

/// Where the SASL conversation of a connection attempt stands.
#[derive(Default)]
pub(super) struct Conversation {
    /// SASL is configured and not finished on this connection.
    running: bool,
    /// The driver runs the mechanism's next step.
    busy: bool,
    /// Tokens the first step produced before the transport was open.
    ready: Vec<Vec<u8>>,
    /// Xids of tokens written and not answered yet, in order.
    sent: VecDeque<i32>,
    /// Answers not yet handed to the mechanism, in order.
    answers: VecDeque<Bytes>,
}

impl std::fmt::Debug for Conversation {
    // Tokens carry credentials' derivatives: only their number is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation")
            .field("running", &self.running)
            .field("busy", &self.busy)
            .field("ready", &self.ready.len())
            .field("sent", &self.sent)
            .field("answers", &self.answers.len())
            .finish()
    }
}

impl Conversation {
    /// The mechanism's first step was asked for.
    pub(super) fn start(&mut self) {
        *self = Self {
            running: true,
            busy: true,
            ..Self::default()
        };
    }

    /// No SASL, or it is done: the connection is free for everything else.
    pub(super) const fn is_done(&self) -> bool {
        !self.running
    }
}

/// What the answer to a mechanism's last token carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Only the server's verdict ([`SaslStep::SendLast`]).
    Verdict,
    /// The server's proof, for the mechanism ([`SaslStep::SendFinal`]).
    Proof,
}

/// What a step means for the connection.
enum Outcome {
    /// Keep going.
    Continue,
    /// The mechanism is done.
    Done,
    /// This host failed.
    Failed(HostFailure),
    /// The credentials are rejected: the session ends.
    Rejected,
}

impl Session {
    /// The SASL mechanism's step for connection `conn` (see [`Action::Sasl`]).
    pub fn handle_sasl(&mut self, now: Instant, conn: ConnId, result: Result<SaslStep, SaslError>) {
        let connecting = match &self.phase {
            Phase::Connecting {
                conn: current,
                attempt,
                ..
            } if *current == conn && attempt.sasl.busy => true,
            Phase::Handshaking {
                conn: current,
                attempt,
                ..
            } if *current == conn && attempt.sasl.busy => false,
            _ => return,
        };
        let outcome = match result {
            Ok(step) => self.sasl_step(now, connecting, step),
            Err(SaslError::Credentials(reason)) => {
                warn!(%reason, "SASL credentials not usable");
                Outcome::Rejected
            }
            Err(SaslError::Protocol(reason)) => {
                warn!(%reason, "SASL exchange broken: next server");
                Outcome::Failed(HostFailure::Protocol)
            }
            Err(other) => {
                info!(%other, "SASL not possible with this server now: next server");
                Outcome::Failed(HostFailure::Auth)
            }
        };
        self.sasl_outcome(now, conn, connecting, outcome);
        // Frames that waited for this step.
        if !connecting {
            self.process_rx(now, conn);
        }
    }

    /// Whether the driver runs a SASL step of an answered handshake (received frames wait).
    pub(super) fn sasl_step_pending(&self) -> bool {
        matches!(
            &self.phase,
            Phase::Handshaking { attempt, .. } if attempt.sasl.busy && attempt.answered.is_some()
        )
    }

    /// Applies one successful step to the current attempt's conversation.
    fn sasl_step(&mut self, now: Instant, connecting: bool, step: SaslStep) -> Outcome {
        let Some(conv) = self.sasl_conversation() else {
            return Outcome::Continue;
        };
        conv.busy = false;
        let unread = !conv.answers.is_empty();
        let unanswered = !conv.sent.is_empty();
        let (tokens, last) = match step {
            SaslStep::Done => {
                if unread || unanswered {
                    warn!("SASL mechanism done with answers outstanding");
                    return Outcome::Failed(HostFailure::Protocol);
                }
                conv.running = false;
                return Outcome::Done;
            }
            SaslStep::Wait => {
                if !unread && !unanswered {
                    warn!("SASL mechanism waits for nothing");
                    return Outcome::Failed(HostFailure::Protocol);
                }
                self.feed_sasl_answer();
                return Outcome::Continue;
            }
            SaslStep::SendAll(tokens) if tokens.is_empty() => {
                warn!("SASL mechanism asked to send nothing");
                return Outcome::Failed(HostFailure::Protocol);
            }
            SaslStep::SendAll(tokens) => (tokens, None),
            SaslStep::Send(token) => (vec![token], None),
            SaslStep::SendLast(token) => (vec![token], Some(Last::Verdict)),
            SaslStep::SendFinal(token) => (vec![token], Some(Last::Proof)),
        };
        if unread {
            warn!("SASL mechanism sent before reading every answer");
            return Outcome::Failed(HostFailure::Protocol);
        }
        if connecting {
            // Before the transport is open there is no session to hand over yet: even a last
            // token waits for its answer.
            conv.ready.extend(tokens);
            return Outcome::Continue;
        }
        if last == Some(Last::Verdict) {
            if unanswered {
                warn!("SASL mechanism finished with answers outstanding");
                return Outcome::Failed(HostFailure::Protocol);
            }
            conv.running = false;
        }
        for token in tokens {
            let Some(xid) = self.write_sasl_token(now, token) else {
                return Outcome::Failed(HostFailure::Protocol);
            };
            if last == Some(Last::Verdict) {
                // Established now: the answer is checked when it arrives (`on_reply`).
                self.sasl_confirm = Some(xid);
            } else if let Some(conv) = self.sasl_conversation() {
                conv.sent.push_back(xid);
            }
        }
        match last {
            Some(Last::Verdict) => return Outcome::Done,
            // The preamble and reads ride behind the client's last token, as behind a
            // ConnectRequest: the server answers them once SASL is done; if the mechanism
            // then rejects the server's proof the reads are sent again elsewhere. Writes
            // wait, and so does everything behind a preamble too large to pipeline.
            Some(Last::Proof) if self.deferred_preamble_len() <= PIPELINED_PREAMBLE_LIMIT => {
                self.write_preamble();
                self.flush_idempotent_prefix(now);
            }
            _ => {}
        }
        self.feed_sasl_answer();
        Outcome::Continue
    }

    fn sasl_outcome(&mut self, now: Instant, conn: ConnId, connecting: bool, outcome: Outcome) {
        match outcome {
            Outcome::Continue => {}
            Outcome::Done => {
                if let Phase::Handshaking {
                    attempt:
                        Attempt {
                            answered: Some(_), ..
                        },
                    ..
                } = &self.phase
                {
                    self.sasl_done(now);
                }
            }
            Outcome::Rejected => self.finish(now, SessionState::AuthFailed),
            Outcome::Failed(failure) if connecting => {
                if let Some((attempt, _)) = self.take_connecting(conn) {
                    self.drop_conn(conn);
                    self.attempt_failed(now, attempt, failure);
                }
            }
            Outcome::Failed(failure) => self.conn_failed(now, failure),
        }
    }

    /// The current attempt's conversation (while connecting or handshaking).
    fn sasl_conversation(&mut self) -> Option<&mut Conversation> {
        match &mut self.phase {
            Phase::Connecting { attempt, .. } | Phase::Handshaking { attempt, .. } => {
                Some(&mut attempt.sasl)
            }
            _ => None,
        }
    }

    /// Hands the next buffered answer to the mechanism, if it is idle.
    fn feed_sasl_answer(&mut self) {
        let Phase::Handshaking { conn, attempt, .. } = &mut self.phase else {
            return;
        };
        let conv = &mut attempt.sasl;
        if conv.busy || !conv.running {
            return;
        }
        if let Some(token) = conv.answers.pop_front() {
            conv.busy = true;
            let (conn, server) = (*conn, attempt.spec.server_name());
            self.actions.push_back(Action::Sasl {
                conn,
                server,
                token: Some(token),
            });
        }
    }

    /// Writes the tokens computed while the transport opened, right behind the
    /// ConnectRequest; `false` if one exceeds the outbound frame limit.
    pub(super) fn write_ready_sasl_tokens(&mut self, now: Instant, attempt: &mut Attempt) -> bool {
        for token in std::mem::take(&mut attempt.sasl.ready) {
            let Some(xid) = self.write_sasl_token(now, token) else {
                return false;
            };
            attempt.sasl.sent.push_back(xid);
        }
        true
    }

    /// Writes one SASL token; its xid, or `None` if it exceeds the outbound frame limit.
    fn write_sasl_token(&mut self, now: Instant, token: Vec<u8>) -> Option<i32> {
        let xid = self.alloc_xid();
        let header = RequestHeader {
            xid,
            op: OpCode::Sasl,
        };
        let body = zk_proto::GetSaslRequest {
            token: Bytes::from(token),
        };
        if !self.write_frame(|buf| {
            header.encode(buf);
            body.encode(buf);
        }) {
            warn!("SASL token larger than the outbound frame limit");
            return None;
        }
        self.last_send = now;
        Some(xid)
    }

    /// A server's answer to a SASL token (the handshake was answered already).
    pub(super) fn on_sasl_reply(&mut self, now: Instant, mut payload: Bytes) {
        let Some(header) = self.reply_header(now, &mut payload) else {
            return;
        };
        let expected = self
            .sasl_conversation()
            .and_then(|conv| conv.sent.front().copied());
        if expected != Some(header.xid) {
            warn!(xid = header.xid, ?expected, "unexpected reply during SASL");
            self.conn_failed(now, HostFailure::Protocol);
            return;
        }
        if !self.sasl_verdict(now, header.err) {
            return;
        }
        let token = match zk_proto::SetSaslResponse::decode(&mut payload) {
            Ok(r) => r.token.unwrap_or_default(),
            Err(err) => {
                warn!(%err, "malformed SASL reply");
                self.conn_failed(now, HostFailure::Protocol);
                return;
            }
        };
        if let Some(conv) = self.sasl_conversation() {
            conv.sent.pop_front();
            conv.answers.push_back(token);
        }
        self.feed_sasl_answer();
    }

    /// What the server's error code on a SASL answer means: `true` to go on; a rejection ends
    /// the session (`AuthFailed`), any other error fails the connection.
    pub(super) fn sasl_verdict(&mut self, now: Instant, err: ErrorCode) -> bool {
        match err {
            ErrorCode::Ok => true,
            ErrorCode::AuthFailed | ErrorCode::SessionClosedRequireSaslAuth => {
                warn!(?err, "the server rejected the SASL credentials");
                self.finish(now, SessionState::AuthFailed);
                false
            }
            other => {
                warn!(err = ?other, "SASL answered with an error");
                self.conn_failed(now, HostFailure::Protocol);
                false
            }
        }
    }

    /// SASL finished on the current handshake: the session is established.
    fn sasl_done(&mut self, now: Instant) {
        let Phase::Handshaking {
            conn,
            attempt,
            target,
        } = std::mem::replace(&mut self.phase, Phase::Waiting)
        else {
            return;
        };
        let Some((answered, read_only)) = attempt.answered else {
            self.phase = Phase::Handshaking {
                conn,
                attempt,
                target,
            };
            return;
        };
        debug!(conn = conn.0, "SASL done");
        self.established(now, conn, attempt, target, answered, read_only);
        self.flush(now);
    }
}
