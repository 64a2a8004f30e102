//! Configuration of the session engine. Every timing is derived from the *negotiated*
//! session timeout `T` unless it is set explicitly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::shared::SharedHosts;

/// A session to resume instead of creating a new one: what another process saved.
#[derive(Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// The session id the server assigned.
    pub session_id: i64,
    /// The session password (16 bytes from the server). Redacted in `Debug`.
    pub password: Bytes,
}

impl std::fmt::Debug for SavedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedSession")
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything the session core needs to know up front.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Requested session timeout. The server clamps it (by default to `[2, 20]` ticks) and the
    /// negotiated value drives every timer.
    pub session_timeout: Duration,
    /// Accept read-only servers (they need `localSessionsEnabled=true` on 3.8 servers).
    pub can_be_read_only: bool,
    /// Resume this session instead of creating one.
    pub resume: Option<SavedSession>,
    /// Failure detection and reconnect timing.
    pub timing: Timing,
    /// Largest request payload sent (the server's `jute.maxbuffer`).
    pub max_outbound_frame: usize,
    /// Largest reply accepted; larger replies fail only their own request.
    pub max_inbound_frame: usize,
    /// Frames above this are a protocol error (a hostile or broken server) rather than a
    /// discarded oversized reply.
    pub max_discard_frame: usize,
    /// At most this many requests are written and not yet answered; the rest wait in order.
    pub max_in_flight: usize,
    /// Consecutive short-lived connections (younger than T/3, 0.5–2 s) closed by the server
    /// in an orderly way, with every handshake in between succeeding at once, before the
    /// engine concludes that another client is using this session and gives up with
    /// `SessionState::TakenOver`. Resets, silences, a refused or timed-out attempt (a
    /// crash, a partition) and handshakes still being closed 100 ms after the loss (an
    /// election; a twin's overlapping handshake closes ours only now and then) start the
    /// count again.
    pub takeover_limit: u32,
    /// Seed for host shuffling and jitter. Many clients spread out over the hosts and jitter
    /// apart only if every session has its own: a driver sets a fresh one (`zk-session`'s
    /// `fresh_seed`, which `zk-client` uses); a simulation a fixed one. `None` (the default
    /// here: the core reads no clock and no entropy) means seed 0, the same for every session.
    pub rng_seed: Option<u64>,
    /// What the sessions of this process learn about servers, shared: a handshake that
    /// another session completed on the same server keeps a slow attempt alive past the
    /// per-attempt cap, and election retries are paced process-wide (see
    /// [`SharedHosts`]). `None` (the default here) keeps the session on its own;
    /// `zk-client` uses one registry for the whole process.
    pub shared: Option<Arc<SharedHosts>>,
    /// With many requests in flight on a TCP connection (plain or TLS), let the kernel wake
    /// the engine once per batch of replies instead of once per reply or two (the socket's
    /// receive low-water mark, bounded so no reply waits for bytes that are not certain to
    /// come, and by a 1 ms timer). Saves client CPU under load; an idle or lightly loaded
    /// connection is unaffected. Default on; Linux only (elsewhere it does nothing).
    pub reply_batching: bool,
    /// Authenticate with SASL after every handshake ([`crate::sasl`]): nothing else goes
    /// out on a connection until the mechanism is done, and a rejection of the credentials
    /// ends the session with `AuthFailed`. `None` (the default): no SASL.
    pub sasl: Option<crate::sasl::SharedMechanism>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(10),
            can_be_read_only: false,
            resume: None,
            timing: Timing::default(),
            max_outbound_frame: zk_proto::DEFAULT_MAX_OUTBOUND_FRAME,
            max_inbound_frame: zk_proto::DEFAULT_MAX_INBOUND_FRAME,
            max_discard_frame: 256 * 1024 * 1024,
            max_in_flight: 4096,
            takeover_limit: 5,
            rng_seed: None,
            shared: None,
            reply_batching: true,
            sasl: None,
        }
    }
}

impl SessionConfig {
    /// Default configuration with the given requested session timeout.
    #[must_use]
    pub fn with_timeout(session_timeout: Duration) -> Self {
        Self {
            session_timeout,
            ..Self::default()
        }
    }
}

/// How failures are detected and how reconnects are paced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Timing {
    /// Silence on a connection for `T × receive_timeout` means the server is gone.
    /// Default 1/3 (the Java client waits 2/3).
    pub receive_timeout: Fraction,
    /// Pings are sent after this fraction of the receive timeout without sending anything,
    /// so a healthy idle connection produces several replies per receive timeout. Default 1/3.
    pub ping_interval: Fraction,
    /// Per-attempt cap (TCP + TLS + handshake). `None` derives it: `T/6` clamped to
    /// 100 ms..2 s, doubled after each fully failed pass (up to 8×). Every attempt is also
    /// bounded by what is left of the session's server-side lifetime. Once the session has
    /// completed handshakes, an unanswered ConnectRequest ends sooner: after 16 × the
    /// session's usual handshake time (at least 200 ms, doubled like the cap), unless other
    /// sessions sharing [`SessionConfig::shared`] are being served by that server.
    pub attempt_cap: Option<Duration>,
    /// No attempt gets less than this, even when the session's lifetime looks used up
    /// (the server's word is the authority on expiry).
    pub min_attempt: Duration,
    /// Backoff after a whole pass over the hosts failed by refusals or timeouts.
    pub backoff: Backoff,
    /// How elections (servers accepting and closing connections at once) are waited out:
    /// a few planned probes, not a stream of retries. See [`ElectionPacing`].
    pub election: ElectionPacing,
    /// With no server reachable, local expiry is reported `T × local_expiry` after the last
    /// contact. Default 4/3, like the Java client since 3.9.3.
    pub local_expiry: Fraction,
    /// Opt-in adaptive frozen-server detector.
    pub adaptive: Option<AdaptiveDetector>,
    /// When the host list grows, the sessions that move to a new server (see
    /// [`Session::update_hosts`](crate::Session::update_hosts)) do so at a uniformly random
    /// moment within this window, so a fleet does not move at once. A session whose server
    /// left the list moves within a fifth of it. Default 5 s.
    pub rebalance_spread: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            receive_timeout: Fraction::new(1, 3),
            ping_interval: Fraction::new(1, 3),
            attempt_cap: None,
            min_attempt: Duration::from_millis(50),
            backoff: Backoff::default(),
            election: ElectionPacing::default(),
            local_expiry: Fraction::new(4, 3),
            adaptive: None,
            rebalance_spread: Duration::from_secs(5),
        }
    }
}

/// A ratio `num / den` applied to a duration (exact integer arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    /// Numerator.
    pub num: u32,
    /// Denominator (0 is treated as 1).
    pub den: u32,
}

impl Fraction {
    /// `num / den`.
    #[must_use]
    pub const fn new(num: u32, den: u32) -> Self {
        Self { num, den }
    }

    /// `d × num / den`.
    #[must_use]
    pub fn of(self, d: Duration) -> Duration {
        d * self.num / self.den.max(1)
    }
}

/// How a session waits out a leader election (see the `pacing` module for the reasoning).
///
/// Before it has learned anything, a session probes first after `floor` (with up to 50 %
/// jitter), then after `first_gap` (±20 %), each gap half as long again as the one before, up
/// to `max_gap`. Once it has seen elections end (and `learn` is on), it probes a short
/// train around the learned end instead. With [`SessionConfig::shared`] the knowledge is the
/// process's, and the process keeps its probes [`SharedHosts::election_spacing`] apart.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ElectionPacing {
    /// No probe before this long after the loss: ZooKeeper's election cannot end before
    /// its finalize wait (200 ms by default) and the new leader's sync with a quorum.
    pub floor: Duration,
    /// The first gap between probes before anything is learned (also the longest gap of a
    /// learned train, and where gaps restart when an election outlasts what was learned).
    pub first_gap: Duration,
    /// Gaps grow by half up to this: no session is more than this late for the end of an
    /// election it has not learned, however long the election lasts.
    pub max_gap: Duration,
    /// Learn how long elections take and probe around the expected end.
    pub learn: bool,
}

impl Default for ElectionPacing {
    fn default() -> Self {
        Self {
            floor: Duration::from_millis(200),
            first_gap: Duration::from_millis(100),
            max_gap: Duration::from_millis(250),
            learn: true,
        }
    }
}

/// Capped, jittered exponential backoff between passes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Backoff {
    /// Delay after the first failed pass.
    pub initial: Duration,
    /// The delay never exceeds this.
    pub max: Duration,
    /// Growth factor per failed pass.
    pub multiplier: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(1),
            multiplier: 2,
        }
    }
}

impl Backoff {
    /// The un-jittered delay after `passes` failed passes (1 = the first).
    #[must_use]
    pub fn delay(&self, passes: u32) -> Duration {
        let mut d = self.initial;
        for _ in 1..passes {
            d = d.saturating_mul(self.multiplier.max(1));
            if d >= self.max {
                return self.max;
            }
        }
        d.min(self.max)
    }
}

/// An accrual-style detector that learns the connection's normal response times and
/// declares the server frozen when an answer is overdue by far more than usual — within
/// about a second, whatever `T` is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdaptiveDetector {
    /// Pings are sent at least this often while the detector is on.
    pub ping_interval: Duration,
    /// Never declare a server frozen before an answer is this overdue.
    pub min_threshold: Duration,
    /// Overdue threshold = max(`min_threshold`, srtt + `deviations` × rttvar).
    pub deviations: u32,
}

impl Default for AdaptiveDetector {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(200),
            min_threshold: Duration::from_millis(750),
            deviations: 16,
        }
    }
}
