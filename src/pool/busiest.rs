//! The busiest tenants in bounded memory: the Space-Saving algorithm (Metwally et al.) over
//! checkouts. `N` counters whatever the number of tenants: a tenant not counted takes the
//! smallest counter's place and count (plus one), so every tenant with more than `1/N` of the
//! checkouts is among the counted, and no count is under the truth. Plain data.

use super::fair::TenantKey;

/// One counted tenant.
#[derive(Clone, Debug)]
pub(super) struct Counted<L> {
    pub(super) key: TenantKey,
    /// Checkouts counted (an overestimate by at most `error`).
    pub(super) count: u64,
    pub(super) error: u64,
    /// What to show for the tenant (never a token).
    pub(super) label: L,
}

pub(super) struct Busiest<L> {
    counted: Vec<Counted<L>>,
    capacity: usize,
}

impl<L> Busiest<L> {
    pub(super) fn new(capacity: usize) -> Self {
        Busiest { counted: Vec::with_capacity(capacity.max(1)), capacity: capacity.max(1) }
    }

    /// Counts one checkout of `key`; `label` is called only when the tenant takes a counter.
    pub(super) fn count(&mut self, key: TenantKey, label: impl FnOnce() -> L) {
        if let Some(c) = self.counted.iter_mut().find(|c| c.key == key) {
            c.count += 1;
            return;
        }
        if self.counted.len() < self.capacity {
            self.counted.push(Counted { key, count: 1, error: 0, label: label() });
            return;
        }
        if let Some(min) = self.counted.iter_mut().min_by_key(|c| c.count) {
            let floor = min.count;
            *min = Counted { key, count: floor + 1, error: floor, label: label() };
        }
    }

    /// The counted tenants, busiest first.
    pub(super) fn top(&self) -> Vec<&Counted<L>> {
        let mut v: Vec<_> = self.counted.iter().collect();
        v.sort_by_key(|c| std::cmp::Reverse(c.count));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heavy_tenant_among_100_000_others_is_found_in_bounded_memory() {
        let mut b = Busiest::new(16);
        for i in 0..100_000u64 {
            b.count(TenantKey::Token(i), || i);
            if i % 10 == 0 {
                b.count(TenantKey::User(7), || 7);
            }
        }
        assert_eq!(b.counted.len(), 16);
        let top = b.top();
        assert_eq!(top[0].key, TenantKey::User(7));
        assert!(top[0].count >= 10_000 && top[0].count - top[0].error <= 10_000);
    }

    #[test]
    fn counts_are_exact_while_the_tenants_fit() {
        let mut b = Busiest::new(4);
        for (key, n) in [(TenantKey::User(1), 3), (TenantKey::User(2), 5), (TenantKey::Pool, 1)] {
            for _ in 0..n {
                b.count(key, || ());
            }
        }
        let top: Vec<_> = b.top().iter().map(|c| (c.key, c.count, c.error)).collect();
        assert_eq!(top, [(TenantKey::User(2), 5, 0), (TenantKey::User(1), 3, 0), (TenantKey::Pool, 1, 0)]);
    }
}
