//! Reconnect pacing: when the next attempt starts. A pure policy, like the host provider: it
//! takes the outcome of each attempt and `now`, and answers "now" or "after this long".
//!
//! ## Why it is shaped this way
//!
//! A retry policy is judged by what a fleet of clients does with it, not one client. When a
//! ZooKeeper leader dies, every follower drops all its clients at once and the survivors
//! hold an election; while they do, they accept TCP and close it without a handshake. Any
//! connection a client makes in that window is wasted work for servers that are busy
//! electing — and a fleet of hundreds of processes, each retrying every millisecond, makes
//! the election itself several times longer (measured: see `docs/benchmarks.md`, fleet).
//!
//! So the pacer treats "accepted and closed without an answer" as an election and plans a
//! few probes instead of a stream of retries:
//!
//! - **No probe before the election can end.** ZooKeeper's election cannot finish before its
//!   finalize wait (200 ms by default) and the new leader's sync with a quorum.
//! - **Learned timing.** When the session comes back after an election, the pacer knows the
//!   election ended between its last refused probe and its successful one. Those brackets
//!   train an estimate of how long elections take (an interval and its drift); the next election is
//!   probed by a short train of attempts spaced by a fraction of the spread, around the
//!   expected end. A lone client that has seen one or two elections comes back within a few
//!   milliseconds of the end while making only a handful of connections.
//! - **Before anything is learned**, probes start after the finalize wait (with up to 50 %
//!   jitter) and then come 100 ms apart (±20 %), each gap half as long again as the one
//!   before, up to 250 ms: three or four connections for a typical 0.4 s election, and never
//!   more than 250 ms late, however long the election lasts.
//! - **Randomness spreads a fleet.** Separate processes cannot coordinate; every planned
//!   moment is jittered, so their probes arrive spread over tens of milliseconds rather
//!   than in one burst.
//!
//! Refusals alone (every server down) and timeouts are not an election: they get the
//! ordinary jittered exponential backoff between passes over the hosts.

use std::time::{Duration, Instant};

use crate::config::{ElectionPacing, Timing};
use crate::host::HostFailure;
use crate::rng::Rng;

/// The least an election's end is assumed to vary from one election to the next.
const MIN_DRIFT: Duration = Duration::from_millis(6);
/// The most it is assumed to vary.
const MAX_DRIFT: Duration = Duration::from_secs(2);
/// Elections longer than this (from the loss to the first handshake) are not learned from:
/// something else (a partition, a long outage) was going on.
const MAX_LEARNED: Duration = Duration::from_secs(30);
/// Probes in a learned train before the pacing falls back to the growing gaps.
const TRAIN_LEN: u32 = 4;
/// Never two probes of one session closer than this.
const MIN_GAP: Duration = Duration::from_millis(2);

/// A handshake this much slower than the session's usual one (and at least
/// [`CROWD_MIN`]) means the server was working through a queue of other clients' handshakes.
const CROWD_FACTOR: u32 = 8;
/// The least handshake time taken as a sign of a crowd.
const CROWD_MIN: Duration = Duration::from_millis(10);

/// Whether a handshake that took `took` was queued behind a crowd, given the session's usual
/// handshake time (`None` before the first: then only [`CROWD_MIN`] × 4 counts).
pub(crate) fn crowded(took: Duration, usual: Option<Duration>) -> bool {
    match usual {
        Some(u) => took >= (u * CROWD_FACTOR).max(CROWD_MIN),
        None => took >= CROWD_MIN * 4,
    }
}

/// One election a session waited out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionSeen {
    /// From the loss to the last probe that was closed unanswered: the election was still on.
    pub lo: Duration,
    /// From the loss to the handshake that succeeded: it was over.
    pub hi: Duration,
    /// That handshake was queued behind many others (it took many times the session's usual
    /// handshake): the session came back with a herd of clients.
    pub crowded: bool,
}

/// What the pacer learned about how long leader elections take, from a session's loss of
/// its connection to the first server serving again.
///
/// Every election the session waits out brackets its end: after the last probe that was
/// still closed, by the handshake that succeeded. The estimate is the intersection of those
/// brackets, each older one widened by how much elections drift from one to the next (a
/// smoothed twice the distance by which an election's bracket misses the interval expected,
/// 6 ms at least); a bracket outside the widened interval replaces it. Two or three elections
/// narrow it to the ensemble's own variation; a change is followed within one election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionEstimate {
    lo: Duration,
    hi: Duration,
    drift: Duration,
    samples: u32,
    crowded: bool,
}

impl ElectionEstimate {
    /// Folds in one election that ended after `seen.lo` (a probe was still closed) and by
    /// `seen.hi` (a handshake succeeded), both measured from the loss. Returns the updated
    /// estimate (`prior` unchanged when the bracket is not usable).
    #[must_use]
    pub fn learn(prior: Option<Self>, seen: ElectionSeen) -> Option<Self> {
        let ElectionSeen { lo, hi, crowded } = seen;
        if hi < lo || hi > MAX_LEARNED {
            return prior;
        }
        let Some(p) = prior else {
            return Some(Self {
                lo,
                hi,
                drift: MIN_DRIFT,
                samples: 1,
                crowded,
            });
        };
        let (wlo, whi) = (p.lo.saturating_sub(p.drift), p.hi + p.drift);
        let (ilo, ihi) = (lo.max(wlo), hi.min(whi));
        // How far this election's end lies outside the interval expected (0 inside it): the
        // drift follows twice the typical move, so the widened interval holds most of the
        // next elections.
        let jump = lo.saturating_sub(p.hi).max(p.lo.saturating_sub(hi));
        let drift = ((p.drift * 3 + jump * 2) / 4).clamp(MIN_DRIFT, MAX_DRIFT);
        let (lo, hi) = if ilo <= ihi { (ilo, ihi) } else { (lo, hi) };
        Some(Self {
            lo,
            hi,
            drift,
            samples: p.samples.saturating_add(1),
            crowded,
        })
    }

    /// The expected end of an election, from the loss.
    #[must_use]
    pub fn end(&self) -> Duration {
        self.lo + (self.hi - self.lo) / 2
    }

    /// How far the end may be from [`ElectionEstimate::end`] next time: half the interval
    /// plus the drift.
    #[must_use]
    pub fn spread(&self) -> Duration {
        (self.hi - self.lo) / 2 + self.drift
    }

    /// Elections learned from.
    #[must_use]
    pub const fn samples(&self) -> u32 {
        self.samples
    }

    /// Whether the last election was left in a crowd (see [`ElectionSeen::crowded`]).
    #[must_use]
    pub const fn crowded(&self) -> bool {
        self.crowded
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Try the next host at once (the pass over the hosts goes on).
    Now,
    /// Wait this long: a failed pass backing off.
    Backoff(Duration),
    /// Wait this long: the next probe of an election.
    Probe(Duration),
}

/// What the session knows when an attempt fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    /// How many hosts there are.
    pub(crate) hosts: usize,
    /// When the session lost its connection, if it had one.
    pub(crate) lost_at: Option<Instant>,
    /// What is known of elections.
    pub(crate) estimate: Option<ElectionEstimate>,
}

/// An election being waited out.
#[derive(Debug, Clone)]
struct Election {
    /// The loss the election is measured from.
    since: Instant,
    /// When the last probe was closed unanswered (the election was still on then).
    last_closed: Instant,
    /// Offset from `since` of the next planned probe.
    next: Duration,
    /// Gap after it.
    gap: Duration,
    /// Gaps left in a learned train (then gaps grow).
    train_left: u32,
    /// Consecutive refusals since the last closed probe (every server down ends the mode).
    refusals: usize,
    /// Probes made.
    probes: u32,
    /// The election was seen to begin with the loss, so its length can be learned.
    learnable: bool,
}

/// Pass and backoff bookkeeping of one session, and the election it may be waiting out.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    failures_since_success: usize,
    passes_failed: u32,
    /// Every failure in the current pass was quick (refused or closed in the handshake).
    pass_only_quick: bool,
    /// Some attempt in the current pass timed out.
    pass_saw_timeout: bool,
    /// Failed passes (since the last success) in which attempts timed out.
    slow_passes: u32,
    election: Option<Election>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            failures_since_success: 0,
            passes_failed: 0,
            pass_only_quick: true,
            pass_saw_timeout: false,
            slow_passes: 0,
            election: None,
        }
    }
}

/// `d` scaled by a random factor in `[lo_pct, hi_pct]` percent.
fn jitter(rng: &mut Rng, d: Duration, lo_pct: u32, hi_pct: u32) -> Duration {
    let span = u64::from(hi_pct.saturating_sub(lo_pct)) + 1;
    let pct = lo_pct + u32::try_from(rng.below(span)).unwrap_or(0);
    d * pct / 100
}

impl Pacer {
    /// Failed passes since the last success in which attempts timed out (they lengthen the
    /// per-attempt cap).
    pub(crate) const fn slow_passes(&self) -> u32 {
        self.slow_passes
    }

    /// Probes made in the current (or last) election.
    pub(crate) fn election_probes(&self) -> u32 {
        self.election.as_ref().map_or(0, |e| e.probes)
    }

    /// A handshake succeeded; `handshake_sent` is when its ConnectRequest went out, `crowded`
    /// whether it queued behind a crowd. Returns the election that just ended, if the session
    /// waited one out that can be learned from.
    pub(crate) fn on_success(
        &mut self,
        handshake_sent: Instant,
        crowded: bool,
    ) -> Option<ElectionSeen> {
        let election = self.election.take();
        *self = Self::default();
        let e = election.filter(|e| e.learnable)?;
        Some(ElectionSeen {
            lo: e.last_closed.saturating_duration_since(e.since),
            hi: handshake_sent.saturating_duration_since(e.since),
            crowded,
        })
    }

    /// An attempt failed; `seen` is what the session knows around it.
    pub(crate) fn on_failure(
        &mut self,
        now: Instant,
        failure: HostFailure,
        seen: Seen,
        timing: &Timing,
        rng: &mut Rng,
    ) -> Pace {
        let Seen {
            hosts,
            lost_at,
            estimate,
        } = seen;
        let hosts = hosts.max(1);
        self.failures_since_success += 1;
        if let Some(pace) = self.election_failure(now, failure, hosts, timing) {
            return pace;
        }
        match failure {
            HostFailure::ClosedInHandshake if self.pass_only_quick => {
                // Accepted and closed, nothing slow in this pass: servers electing a leader.
                let since = lost_at.unwrap_or(now);
                let mut e = Self::plan(since, now, &timing.election, estimate, rng);
                let pace = Self::next_probe(&mut e, now, &timing.election);
                self.election = Some(e);
                self.pass_only_quick = true;
                self.pass_saw_timeout = false;
                return pace;
            }
            HostFailure::ClosedInHandshake | HostFailure::Refused => {}
            HostFailure::TimedOut => {
                self.pass_only_quick = false;
                self.pass_saw_timeout = true;
            }
            _ => self.pass_only_quick = false,
        }
        if !self.failures_since_success.is_multiple_of(hosts) {
            return Pace::Now;
        }
        // A whole pass failed.
        self.passes_failed = self.passes_failed.saturating_add(1);
        if self.pass_saw_timeout {
            // Hosts may be alive but slow (overload): give the next pass longer attempts.
            self.slow_passes = self.slow_passes.saturating_add(1);
        }
        self.pass_only_quick = true;
        self.pass_saw_timeout = false;
        // Jitter in [base/2, base] so a herd of clients spreads out.
        let base = timing.backoff.delay(self.passes_failed);
        Pace::Backoff(jitter(rng, base, 50, 100))
    }

    /// A failure while an election is being waited out; `None` when it ends the election
    /// mode (the ordinary pass logic takes over).
    fn election_failure(
        &mut self,
        now: Instant,
        failure: HostFailure,
        hosts: usize,
        timing: &Timing,
    ) -> Option<Pace> {
        let e = self.election.as_mut()?;
        match failure {
            HostFailure::ClosedInHandshake => {
                e.last_closed = now;
                e.refusals = 0;
                Some(Self::next_probe(e, now, &timing.election))
            }
            // A crashed server among electing ones: the next host, unless all refuse.
            HostFailure::Refused | HostFailure::Unresolvable if e.refusals + 1 < hosts => {
                e.refusals += 1;
                Some(Pace::Now)
            }
            _ => {
                self.election = None;
                self.failures_since_success = 1;
                None
            }
        }
    }

    /// The probe plan for an election that began at `since` (the loss).
    fn plan(
        since: Instant,
        now: Instant,
        cfg: &ElectionPacing,
        estimate: Option<ElectionEstimate>,
        rng: &mut Rng,
    ) -> Election {
        // Evidence long after the loss (timeouts came first): the election began later
        // than the loss, at an unknown moment. Plan from now and learn nothing from it.
        let learnable = now.saturating_duration_since(since) <= cfg.floor;
        let since = if learnable { since } else { now };
        // A train concentrates the probes near the expected end: right for one client, but a
        // herd doing it would crowd the servers just as they finish electing. A session that
        // came back in a crowd last time keeps the spread-out schedule.
        let (next, gap, train_left) = match estimate.filter(|e| cfg.learn && !e.crowded) {
            Some(est) => {
                // A train of probes over [end − spread, end + spread], spaced so that it
                // covers the window in `TRAIN_LEN` probes; the start is jittered by one gap
                // so that a fleet that learned the same estimate still spreads out.
                let gap = (est.spread() * 2 / (TRAIN_LEN - 1)).clamp(MIN_GAP, cfg.first_gap);
                let start = est.end().saturating_sub(est.spread());
                (start + jitter(rng, gap, 0, 100), gap, TRAIN_LEN - 1)
            }
            None => (
                jitter(rng, cfg.floor, 100, 150),
                jitter(rng, cfg.first_gap, 80, 120),
                0,
            ),
        };
        Election {
            since,
            last_closed: now,
            next,
            gap,
            train_left,
            refusals: 0,
            probes: 0,
            learnable,
        }
    }

    /// Schedules the next probe of `e` and advances its plan.
    fn next_probe(e: &mut Election, now: Instant, cfg: &ElectionPacing) -> Pace {
        let elapsed = now.saturating_duration_since(e.since);
        // A plan that fell behind (slow attempts) skips the moments already past.
        while e.since + e.next < now + MIN_GAP && e.next < elapsed + cfg.max_gap {
            Self::advance(e, cfg);
        }
        let delay = (e.since + e.next)
            .saturating_duration_since(now)
            .max(MIN_GAP);
        Self::advance(e, cfg);
        e.probes = e.probes.saturating_add(1);
        Pace::Probe(delay)
    }

    /// Moves the plan one probe on: a learned train keeps its spacing; past it (the election
    /// outlasted what was learned) the gap doubles (at least a quarter of `first_gap`), and
    /// from then on, as before anything is learned, each gap is half as long again as the
    /// one before, up to `max_gap`.
    fn advance(e: &mut Election, cfg: &ElectionPacing) {
        e.next += e.gap;
        if e.train_left > 0 {
            e.train_left -= 1;
            if e.train_left == 0 {
                // The election outlasted what was learned: step well past the train.
                e.gap = (e.gap * 2).max(cfg.first_gap / 4);
            }
        } else {
            e.gap = (e.gap * 3 / 2).min(cfg.max_gap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn seen(lo: Duration, hi: Duration) -> ElectionSeen {
        ElectionSeen {
            lo,
            hi,
            crowded: false,
        }
    }

    #[test]
    fn a_handshake_queued_behind_a_crowd_is_told_from_a_normal_one() {
        let usual = Some(MS + MS / 2);
        assert!(!crowded(3 * MS, usual));
        assert!(!crowded(9 * MS, usual));
        assert!(crowded(12 * MS, usual));
        // Slow servers: relative to the session's own usual handshake.
        assert!(!crowded(30 * MS, Some(5 * MS)));
        assert!(crowded(40 * MS, Some(5 * MS)));
        assert!(!crowded(20 * MS, None));
        assert!(crowded(45 * MS, None));
    }

    #[test]
    fn a_session_that_came_back_in_a_crowd_keeps_the_spread_schedule() {
        let timing = Timing::default();
        let t0 = Instant::now();
        let est = |crowded| {
            ElectionEstimate::learn(
                None,
                ElectionSeen {
                    lo: 395 * MS,
                    hi: 400 * MS,
                    crowded,
                },
            )
        };
        let first_probe = |estimate| {
            let mut p = Pacer::default();
            let seen = Seen {
                hosts: 3,
                lost_at: Some(t0),
                estimate,
            };
            match p.on_failure(
                t0 + MS,
                HostFailure::ClosedInHandshake,
                seen,
                &timing,
                &mut Rng::new(5),
            ) {
                Pace::Probe(d) => d + MS,
                other => panic!("{other:?}"),
            }
        };
        // Alone last time: the train starts just before the learned end.
        let alone = first_probe(est(false));
        assert!((380 * MS..400 * MS).contains(&alone), "{alone:?}");
        // In a crowd: the first probe as if nothing were learned (200-300 ms).
        let crowd = first_probe(est(true));
        assert!((200 * MS..=300 * MS).contains(&crowd), "{crowd:?}");
    }

    #[test]
    fn learning_narrows_on_a_steady_election_and_follows_a_change() {
        let est = ElectionEstimate::learn(None, seen(330 * MS, 475 * MS)).unwrap();
        assert_eq!(est.end(), 402 * MS + MS / 2);
        let est = ElectionEstimate::learn(Some(est), seen(350 * MS, 402 * MS)).unwrap();
        let est = ElectionEstimate::learn(Some(est), seen(396 * MS, 417 * MS)).unwrap();
        assert_eq!((est.lo, est.hi), (396 * MS, 402 * MS + MIN_DRIFT));
        assert!(est.spread() <= 25 * MS, "{est:?}");
        assert_eq!(est.samples(), 3);
        // Elections got slower: the next bracket lies outside, so it is taken as it is
        // and the assumed drift grows.
        let moved = ElectionEstimate::learn(Some(est), seen(590 * MS, 640 * MS)).unwrap();
        assert_eq!(moved.end(), 615 * MS);
        assert!(moved.drift > 90 * MS, "{moved:?}");
        // A bracket the wrong way round or an outage is not learned from.
        assert_eq!(
            ElectionEstimate::learn(Some(est), seen(5 * MS, 4 * MS)),
            Some(est)
        );
        assert_eq!(
            ElectionEstimate::learn(None, seen(MS, MAX_LEARNED + MS)),
            None
        );
    }

    #[test]
    fn a_prior_election_is_probed_a_few_times() {
        let timing = Timing::default();
        let t0 = Instant::now();
        for seed in 0..200 {
            let mut rng = Rng::new(seed);
            let mut p = Pacer::default();
            let seen = Seen {
                hosts: 3,
                lost_at: Some(t0),
                estimate: None,
            };
            let mut now = t0 + MS;
            let mut probes = Vec::new();
            let mut pace =
                p.on_failure(now, HostFailure::ClosedInHandshake, seen, &timing, &mut rng);
            while let Pace::Probe(d) = pace {
                now += d;
                if now - t0 > Duration::from_millis(400) {
                    break;
                }
                probes.push(now - t0);
                pace = p.on_failure(now, HostFailure::ClosedInHandshake, seen, &timing, &mut rng);
            }
            // No probe inside the finalize wait; at most three closed probes before a
            // 400 ms election ends, and the next one comes within 200 ms of its end.
            assert!(probes.iter().all(|p| *p >= 200 * MS), "{probes:?}");
            assert!(probes.len() <= 3, "seed {seed}: {probes:?}");
            assert!(
                now - t0 <= Duration::from_millis(600),
                "seed {seed}: {probes:?}"
            );
        }
    }
}
