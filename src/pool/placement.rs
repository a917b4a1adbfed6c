//! Where a new session goes, as plain data: the connection whose node is serving and fast,
//! with the fewest requests in flight, then the fewest sessions. Called from one place, the
//! table's `reserve` (with loads read before the table is locked).

use crate::error::Error;

/// What placement knows of one connection when a session is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Load {
    /// The connection is not closed.
    pub(super) open: bool,
    /// It is up (not reconnecting, not moving) and its node is not ejected.
    pub(super) serving: bool,
    /// Requests written and not yet answered, and commands queued for it.
    pub(super) in_flight: usize,
    /// Its recent reply latency (a moving average, in microseconds), if it has one.
    pub(super) latency_us: Option<u64>,
}

impl Load {
    /// An open, serving, idle connection (the unit tests' start, and a pool's at build).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn idle() -> Load {
        Load { open: true, serving: true, in_flight: 0, latency_us: None }
    }
}

/// A connection is *slow* when its latency is over twice the fastest candidate's and over it by
/// more than this (so that noise between equally near nodes never counts).
const SLOW_MARGIN_US: u64 = 1_000;

/// Whether a connection of `latency` (µs) is slow beside the `fastest` candidate's.
fn is_slow(latency: Option<u64>, fastest: Option<u64>) -> bool {
    match (latency, fastest) {
        (Some(us), Some(best)) => us > best.saturating_mul(2) && us > best.saturating_add(SLOW_MARGIN_US),
        _ => false,
    }
}

/// Which connections placement counts as slow, among the `serving` ones (as [`choose`] does):
/// new sessions do not go there while another serves, so evening sessions out must not count
/// them as lacking either (it would shed sessions that placement puts back where they were).
pub(super) fn slow(latencies: &[Option<u64>], serving: &[bool]) -> Vec<bool> {
    let serving_at = |i: usize| serving.get(i).copied().unwrap_or(false);
    let fastest = latencies.iter().enumerate().filter(|(i, _)| serving_at(*i)).filter_map(|(_, l)| *l).min();
    latencies.iter().enumerate().map(|(i, l)| serving_at(i) && is_slow(*l, fastest)).collect()
}

/// Picks the connection for a new session among `(index, sessions, load)`: only open ones
/// under `cap` sessions; among them the serving ones if there is any; then not slow before
/// slow, fewer requests in flight, fewer sessions, lower index. `Closed` when no connection is
/// open, `SessionLimit` when every open one holds `cap`.
pub(super) fn choose(rooms: impl IntoIterator<Item = (usize, usize, Load)>, cap: usize) -> Result<usize, Error> {
    let open: Vec<(usize, usize, Load)> = rooms.into_iter().filter(|(_, _, l)| l.open).collect();
    if open.is_empty() {
        return Err(Error::Closed);
    }
    let room: Vec<&(usize, usize, Load)> = open.iter().filter(|(_, n, _)| *n < cap).collect();
    if room.is_empty() {
        return Err(Error::SessionLimit { per_connection: cap });
    }
    let serving: Vec<&(usize, usize, Load)> = room.iter().copied().filter(|(_, _, l)| l.serving).collect();
    let pool = if serving.is_empty() { room } else { serving };
    let fastest = pool.iter().filter_map(|(_, _, l)| l.latency_us).min();
    let slow = |l: &Load| is_slow(l.latency_us, fastest);
    pool.iter()
        .min_by_key(|(i, n, l)| (slow(l), l.in_flight, *n, *i))
        .map(|(i, ..)| *i)
        .ok_or(Error::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(rooms: &[(usize, Load)], cap: usize) -> Result<usize, Error> {
        choose(rooms.iter().enumerate().map(|(i, (n, l))| (i, *n, *l)), cap)
    }

    #[test]
    fn with_equal_loads_the_fewest_sessions_win() {
        let idle = Load::idle();
        assert_eq!(pick(&[(3, idle), (1, idle), (2, idle)], 8).unwrap(), 1);
        assert_eq!(pick(&[(2, idle), (2, idle)], 8).unwrap(), 0, "a tie goes to the lower index");
    }

    #[test]
    fn the_fewest_requests_in_flight_win_over_the_fewest_sessions() {
        let busy = Load { in_flight: 9, ..Load::idle() };
        let quiet = Load { in_flight: 1, ..Load::idle() };
        assert_eq!(pick(&[(1, busy), (7, quiet)], 8).unwrap(), 1);
    }

    #[test]
    fn a_slow_node_takes_new_sessions_only_when_no_other_can() {
        let near = |us| Load { latency_us: Some(us), ..Load::idle() };
        // 100 ms against 1 ms: slow, even with nothing in flight and fewer sessions.
        let far = Load { latency_us: Some(100_000), ..Load::idle() };
        let busy_near = Load { in_flight: 30, ..near(1_000) };
        assert_eq!(pick(&[(0, far), (5, busy_near)], 8).unwrap(), 1);
        // Noise between near nodes is not slowness: 300 µs against 150 µs is under the margin.
        assert_eq!(pick(&[(0, near(300)), (4, near(150))], 8).unwrap(), 0);
        // No latency known yet: not slow.
        assert_eq!(pick(&[(0, Load::idle()), (1, near(100))], 8).unwrap(), 0);
        // The slow one is the only one with room.
        assert_eq!(pick(&[(2, far), (8, near(1_000))], 8).unwrap(), 0);
    }

    #[test]
    fn connections_that_do_not_serve_are_a_last_resort_and_closed_ones_never() {
        let down = Load { serving: false, ..Load::idle() };
        let closed = Load { open: false, ..Load::idle() };
        assert_eq!(pick(&[(0, down), (6, Load::idle())], 8).unwrap(), 1, "an ejected node or a reconnecting socket waits");
        assert_eq!(pick(&[(0, down), (8, Load::idle())], 8).unwrap(), 0, "better a reconnecting socket than none");
        assert!(matches!(pick(&[(0, closed)], 8), Err(Error::Closed)));
        assert!(matches!(pick(&[], 8), Err(Error::Closed)));
        assert!(matches!(pick(&[(8, Load::idle()), (0, closed)], 8), Err(Error::SessionLimit { per_connection: 8 })));
    }

    #[test]
    fn slow_is_judged_among_serving_connections_as_placement_judges_it() {
        let us = [Some(30_000), Some(500), Some(900), None];
        assert_eq!(slow(&us, &[true, true, true, true]), [true, false, false, false]);
        assert_eq!(slow(&us, &[true, false, false, true]), [false, false, false, false], "the fastest serving one is the measure");
    }
}
