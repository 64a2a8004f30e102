//! `zk_session::config_with_timeout` gives every session a seed of its own, so a process's
//! sessions spread over the hosts: checked in the core's simulated ensemble.
#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Duration;

use zk_session_core::testing::Sim;

const T: Duration = Duration::from_secs(6);

fn connected(sim: &mut Sim) -> usize {
    sim.connect_now()
}

#[test]
fn sessions_with_default_seeds_spread_over_the_hosts() {
    // A thousand sessions in one process must not all pick the same first server (nor
    // the same next one after a crash): each gets its own seed by default.
    let mut first = [0_usize; 3];
    for _ in 0..300 {
        let mut sim = Sim::new(3, zk_session::config_with_timeout(T));
        first[connected(&mut sim)] += 1;
    }
    assert!(first.iter().all(|&n| n > 50), "first hosts: {first:?}");
}
