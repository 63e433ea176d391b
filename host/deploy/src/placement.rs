//! Where replicas go: pure functions from the hosts that may run an entity and where it
//! runs now to the hosts that should start or stop a replica. No I/O, so every rule is
//! unit-tested.
//!
//! Rules: a replica runs only on a host whose labels include the entity's `host_labels`;
//! replicas go to distinct hosts; with `spread`, the replicas are shared among the groups
//! in proportion to their weights (largest remainder), and a group without enough hosts
//! spills over to the others (the replica count is the requirement, the spread a
//! preference); among equals, the host running the fewest of the app's entities wins,
//! then the smaller host id (so every reconciler chooses alike).

use std::collections::{BTreeMap, BTreeSet};

use nimbus_app::Spread;

/// Host labels.
pub type Labels = BTreeMap<String, String>;

/// A host that could receive a replica.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The host's id.
    pub id: &'a str,
    /// Its labels.
    pub labels: &'a Labels,
    /// How many of the app's entities it runs already.
    pub load: usize,
}

/// Whether a host with `labels` carries every label of `wanted`.
pub fn matches(labels: &Labels, wanted: &Labels) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Shares `total` among `weights` in proportion (largest remainder; ties to the first).
pub fn apportion(total: u32, weights: &[u32]) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u32, u64)> = weights
        .iter()
        .map(|w| {
            let scaled = u64::from(total) * u64::from(*w);
            ((scaled / sum) as u32, scaled % sum)
        })
        .collect();
    let mut shares: Vec<u32> = exact.iter().map(|(q, _)| *q).collect();
    let mut left = total.saturating_sub(shares.iter().sum());
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for i in order.into_iter().cycle() {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// The groups of a spread: the given ones, or one group of every host.
fn groups(spread: &[Spread]) -> Vec<(Labels, u32)> {
    if spread.is_empty() {
        vec![(Labels::new(), 1)]
    } else {
        spread
            .iter()
            .map(|g| (g.labels.clone(), g.weight))
            .collect()
    }
}

/// The index of the first group whose labels a host carries.
fn group_of(groups: &[(Labels, u32)], labels: &Labels) -> Option<usize> {
    groups.iter().position(|(g, _)| matches(labels, g))
}

/// The hosts that should start a replica so that `wanted` run. `placed` are the labels
/// of the hosts that run (or are starting) one; `candidates` the hosts that may take one
/// (they already satisfy `host_labels` and run none).
pub fn choose(
    wanted: u32,
    spread: &[Spread],
    placed: &[&Labels],
    candidates: &[Candidate<'_>],
) -> Vec<String> {
    let missing = (wanted as usize).saturating_sub(placed.len());
    if missing == 0 {
        return Vec::new();
    }
    let groups = groups(spread);
    let targets = apportion(wanted, &groups.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let mut in_group = vec![0u32; groups.len()];
    for labels in placed {
        if let Some(g) = group_of(&groups, labels) {
            in_group[g] += 1;
        }
    }
    let mut sorted: Vec<&Candidate<'_>> = candidates.iter().collect();
    sorted.sort_by(|a, b| a.load.cmp(&b.load).then(a.id.cmp(b.id)));
    let mut chosen: Vec<String> = Vec::new();
    let mut taken = BTreeSet::new();
    for (g, target) in targets.iter().enumerate() {
        let need = target.saturating_sub(in_group[g]) as usize;
        let picks: Vec<&str> = sorted
            .iter()
            .filter(|c| group_of(&groups, c.labels) == Some(g) && !taken.contains(c.id))
            .take(need.min(missing - chosen.len()))
            .map(|c| c.id)
            .collect();
        for id in picks {
            taken.insert(id);
            chosen.push(id.to_string());
        }
    }
    // Spill over: the count is the requirement, the spread a preference.
    for c in &sorted {
        if chosen.len() >= missing {
            break;
        }
        if taken.insert(c.id) {
            chosen.push(c.id.to_string());
        }
    }
    chosen
}

/// Which of the hosts in `placed` (id, labels, load) should stop their replica so that
/// `wanted` remain: from the group furthest over its share, the most loaded host first.
pub fn surplus(wanted: u32, spread: &[Spread], placed: &[(&str, &Labels, usize)]) -> Vec<String> {
    let extra = placed.len().saturating_sub(wanted as usize);
    if extra == 0 {
        return Vec::new();
    }
    let groups = groups(spread);
    let targets = apportion(wanted, &groups.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let mut remaining: Vec<(&str, Option<usize>, usize)> = placed
        .iter()
        .map(|(id, labels, load)| (*id, group_of(&groups, labels), *load))
        .collect();
    let mut stop = Vec::new();
    while stop.len() < extra {
        let count = |g: Option<usize>| remaining.iter().filter(|(_, gg, _)| *gg == g).count();
        // Hosts in no group are the most over their share.
        let over = |g: Option<usize>| match g {
            Some(i) => count(g) as i64 - i64::from(targets[i]),
            None => i64::MAX,
        };
        let Some(pos) = (0..remaining.len()).max_by(|a, b| {
            let (ia, ga, la) = remaining[*a];
            let (ib, gb, lb) = remaining[*b];
            over(ga).cmp(&over(gb)).then(la.cmp(&lb)).then(ia.cmp(ib))
        }) else {
            break;
        };
        stop.push(remaining.remove(pos).0.to_string());
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn zone(z: &str, weight: u32) -> Spread {
        Spread {
            labels: labels(&[("zone", z)]),
            weight,
        }
    }

    #[test]
    fn apportion_uses_largest_remainders() {
        assert_eq!(apportion(3, &[1, 1]), vec![2, 1]);
        assert_eq!(apportion(4, &[3, 1]), vec![3, 1]);
        assert_eq!(apportion(1, &[1, 3]), vec![0, 1]);
        assert_eq!(apportion(5, &[1, 1, 1]), vec![2, 2, 1]);
        assert_eq!(apportion(2, &[0]), vec![0]);
    }

    #[test]
    fn replicas_go_to_distinct_least_loaded_hosts() {
        let l = labels(&[]);
        let candidates = [
            Candidate {
                id: "N3",
                labels: &l,
                load: 0,
            },
            Candidate {
                id: "N1",
                labels: &l,
                load: 2,
            },
            Candidate {
                id: "N2",
                labels: &l,
                load: 0,
            },
        ];
        assert_eq!(choose(2, &[], &[], &candidates), vec!["N2", "N3"]);
        assert_eq!(choose(2, &[], &[&l], &candidates), vec!["N2"]);
        assert!(choose(1, &[], &[&l], &candidates).is_empty());
        assert_eq!(choose(5, &[], &[], &candidates).len(), 3, "no host twice");
    }

    #[test]
    fn spread_shares_by_weight_and_spills_over() {
        let (a, b) = (labels(&[("zone", "a")]), labels(&[("zone", "b")]));
        let candidates = [
            Candidate {
                id: "A1",
                labels: &a,
                load: 0,
            },
            Candidate {
                id: "A2",
                labels: &a,
                load: 0,
            },
            Candidate {
                id: "B1",
                labels: &b,
                load: 0,
            },
        ];
        let spread = [zone("a", 1), zone("b", 1)];
        assert_eq!(choose(2, &spread, &[], &candidates), vec!["A1", "B1"]);
        // Zone b is already served: the next replica goes to zone a.
        assert_eq!(choose(2, &spread, &[&b], &candidates), vec!["A1"]);
        // Three replicas 1:2, but zone b has one host: the third spills over to a.
        let spread = [zone("a", 1), zone("b", 2)];
        assert_eq!(choose(3, &spread, &[], &candidates), vec!["A1", "B1", "A2"]);
    }

    #[test]
    fn surplus_stops_the_group_furthest_over_its_share() {
        let (a, b, c) = (
            labels(&[("zone", "a")]),
            labels(&[("zone", "b")]),
            labels(&[("zone", "c")]),
        );
        let spread = [zone("a", 1), zone("b", 1)];
        let placed = [("A1", &a, 1), ("A2", &a, 3), ("B1", &b, 1), ("C1", &c, 0)];
        // C1 is in no group, then zone a (2 for a share of 1), its busier host first.
        assert_eq!(surplus(2, &spread, &placed), vec!["C1", "A2"]);
        assert!(surplus(4, &spread, &placed).is_empty());
        let plain = [("N1", &a, 0), ("N2", &a, 5)];
        assert_eq!(surplus(1, &[], &plain), vec!["N2"]);
    }
}
