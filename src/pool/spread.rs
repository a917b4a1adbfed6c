//! Where each socket should be, as plain data: off an ejected node, and back on its home node
//! (socket `i` of a pool starts on endpoint `i mod n`) once that node is healthy. The
//! supervisor asks the connections for the moves this plans; each move drains its socket and
//! replays every session on the new one before it takes another command.
//!
//! And how many sessions each socket should shed so that the sessions are even again over the
//! serving sockets ([`excess`]): sessions created while a node was away went to the others,
//! and a socket that comes home brings back only the sessions it had. A session is shed when
//! it comes back from a checkout (it is replaced: detached, and created again where placement
//! says, on the emptiest serving socket), never while someone holds it.

/// One socket as the plan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Socket {
    /// The node it was configured for.
    pub(super) home: usize,
    /// The node it is up on now; `None` while it reconnects (its reconnect skips ejected
    /// nodes by itself) or when its endpoint is not one of the pool's.
    pub(super) on: Option<usize>,
    /// A move of it is under way.
    pub(super) moving: bool,
}

/// Why a socket is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// Its node is ejected.
    Ejected,
    /// Its home node is healthy and it is elsewhere.
    Home,
}

/// The moves `(socket, to node, why)` that bring `sockets` where they should be, given which
/// nodes are `healthy`. A socket on an ejected node goes home if home is healthy, else to the
/// healthy node with the fewest sockets; with `rebalance`, a socket elsewhere than its healthy
/// home goes home. Nothing moves to a node that is not healthy.
pub(super) fn plan(sockets: &[Socket], healthy: &[bool], rebalance: bool) -> Vec<(usize, usize, Why)> {
    let is_healthy = |n: usize| healthy.get(n).copied().unwrap_or(false);
    let mut count = vec![0usize; healthy.len()];
    for s in sockets {
        if let Some(n) = s.on.filter(|n| *n < count.len()) {
            count[n] += 1;
        }
    }
    let mut moves = Vec::new();
    for (i, s) in sockets.iter().enumerate() {
        let Some(on) = s.on.filter(|n| *n < count.len()) else { continue };
        if s.moving {
            continue;
        }
        let target = if !is_healthy(on) {
            let elsewhere = (0..healthy.len()).filter(|&n| is_healthy(n)).min_by_key(|&n| (count[n], n));
            let to = if is_healthy(s.home) { Some(s.home) } else { elsewhere };
            to.map(|to| (to, Why::Ejected))
        } else if rebalance && on != s.home && is_healthy(s.home) {
            Some((s.home, Why::Home))
        } else {
            None
        };
        if let Some((to, why)) = target {
            count[on] -= 1;
            count[to] += 1;
            moves.push((i, to, why));
        }
    }
    moves
}

/// How many sessions each connection should shed, given its `sessions` and whether it is
/// `serving`: among the serving ones, what a connection holds above an even share (rounded
/// up), as long as others hold less than an even share (rounded down) — at most what those
/// lack. Connections that do not serve neither shed nor count.
pub(super) fn excess(sessions: &[usize], serving: &[bool]) -> Vec<usize> {
    let serving_at = |i: usize| serving.get(i).copied().unwrap_or(false);
    let n = (0..sessions.len()).filter(|&i| serving_at(i)).count();
    let mut out = vec![0; sessions.len()];
    if n < 2 {
        return out;
    }
    let total: usize = (0..sessions.len()).filter(|&i| serving_at(i)).map(|i| sessions[i]).sum();
    let (low, high) = (total / n, total.div_ceil(n));
    let mut lacking: usize = (0..sessions.len()).filter(|&i| serving_at(i)).map(|i| low.saturating_sub(sessions[i])).sum();
    for i in (0..sessions.len()).filter(|&i| serving_at(i)) {
        let shed = sessions[i].saturating_sub(high).min(lacking);
        out[i] = shed;
        lacking -= shed;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_shed_from_full_sockets_only_while_others_lack() {
        assert_eq!(excess(&[0, 6], &[true, true]), [0, 3], "a socket back home with none");
        assert_eq!(excess(&[4, 4, 4], &[true; 3]), [0, 0, 0], "even");
        assert_eq!(excess(&[5, 4, 4], &[true; 3]), [0, 0, 0], "within one of even");
        assert_eq!(excess(&[5, 4, 3], &[true; 3]), [1, 0, 0], "one above, one below: one moves");
        assert_eq!(excess(&[2, 10, 6, 6], &[true; 4]), [0, 4, 0, 0], "6 each: 4 lacking, 4 above");
        assert_eq!(excess(&[9, 9, 0], &[true, true, false]), [0, 0, 0], "the empty one does not serve yet");
        assert_eq!(excess(&[12], &[true]), [0], "one socket: nowhere to go");
        assert_eq!(excess(&[1, 8, 8], &[true; 3]), [0, 2, 2], "5 each: 4 lacking, shed by both");
    }

    fn on(home: usize, on: usize) -> Socket {
        Socket { home, on: Some(on), moving: false }
    }

    #[test]
    fn a_spread_as_configured_stays() {
        let sockets = [on(0, 0), on(1, 1), on(2, 2), on(0, 0)];
        assert!(plan(&sockets, &[true; 3], true).is_empty());
    }

    #[test]
    fn sockets_that_failed_over_go_home_once_it_is_healthy() {
        // Socket 0 (home 0) failed over to node 1; node 0 is back.
        let sockets = [on(0, 1), on(1, 1), on(2, 2)];
        assert_eq!(plan(&sockets, &[true, true, true], true), [(0, 0, Why::Home)]);
        assert!(plan(&sockets, &[false, true, true], true).is_empty(), "not while its home is ejected");
        assert!(plan(&sockets, &[true, true, true], false).is_empty(), "not without rebalancing");
        let moving = [Socket { moving: true, ..on(0, 1) }];
        assert!(plan(&moving, &[true, true], true).is_empty(), "one move at a time");
        let reconnecting = [Socket { home: 0, on: None, moving: false }];
        assert!(plan(&reconnecting, &[true, true], true).is_empty(), "a reconnecting socket finds its way itself");
    }

    #[test]
    fn an_ejected_nodes_sockets_spread_over_the_healthy_ones() {
        // Node 1 is ejected; its two sockets go to the nodes with the fewest sockets.
        let sockets = [on(0, 0), on(1, 1), on(2, 2), on(1, 1), on(2, 2)];
        let moves = plan(&sockets, &[true, false, true], true);
        assert_eq!(moves, [(1, 0, Why::Ejected), (3, 0, Why::Ejected)], "node 0 had one, node 2 two: 0, then a tie to 0");
        // A socket on an ejected node whose home is healthy goes home.
        assert_eq!(plan(&[on(0, 1), on(1, 1)], &[true, false], true), [(0, 0, Why::Ejected), (1, 0, Why::Ejected)]);
        // Nowhere healthy: nothing moves.
        assert!(plan(&[on(0, 0)], &[false], true).is_empty());
        // An endpoint that is not the pool's is left alone.
        assert!(plan(&[on(0, 7)], &[true], true).is_empty());
    }
}
