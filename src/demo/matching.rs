//! A simple, deterministic greedy matcher — a stand-in for the real one (issue 5),
//! kept in one small function so it can be replaced.
//!
//! For a claim, in pledge order, a pledge is taken when it is compatible — same subject,
//! the claim's grade in its band, its district the claim's own or one it accepts, or
//! online and the claim accepts online — and the claim's unreserved value buys at least
//! one of its lessons. It then reserves `k = min(lessons per seat, capacity left,
//! unreserved / value)` lessons: the ledger's own rule for `allocation_made`.
//!
//! ```
//! use lesson_ledger::demo::matching::{greedy, Need, OpenPledge};
//! let mut pool = vec![OpenPledge {
//!     subject: "math".into(), grade_min: 1, grade_max: 6, district: None,
//!     lessons_per_seat: 10, value_fen: 15_000, available: 25,
//! }];
//! let need = Need { subject: "math", grade: 5, district: "xuhui", accepts_online: true,
//!                   accepted_districts: &[], unreserved_fen: 100_000 };
//! // 100,000 fen buys 6 lessons at 15,000: what is left stays for a cheaper course.
//! assert_eq!(greedy(&need, &mut pool, &[0], 3), vec![(0, 6)]);
//! assert_eq!(pool[0].available, 19);
//! ```

/// A pledge as the matcher tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPledge {
    pub subject: String,
    pub grade_min: u64,
    pub grade_max: u64,
    /// `None`: online.
    pub district: Option<String>,
    pub lessons_per_seat: u64,
    pub value_fen: u64,
    /// Lessons not yet reserved.
    pub available: u64,
}

/// What a claim still needs.
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    pub subject: &'a str,
    pub grade: u64,
    pub district: &'a str,
    pub accepts_online: bool,
    pub accepted_districts: &'a [&'a str],
    pub unreserved_fen: u64,
}

/// Whether `p` may serve the claim (the ledger checks the same on `allocation_made`).
#[must_use]
pub fn compatible(need: &Need<'_>, p: &OpenPledge) -> bool {
    let location = match &p.district {
        None => need.accepts_online,
        Some(d) => d == need.district || need.accepted_districts.contains(&d.as_str()),
    };
    p.subject == need.subject && (p.grade_min..=p.grade_max).contains(&need.grade) && location
}

/// Allocations for one claim, at most `max_allocations`: `(pledge index, lessons)`.
/// `candidates` are indexes into `pledges` (e.g. those of the claim's subject), tried
/// in order; the pledges' `available` is reduced by what is taken.
#[must_use]
pub fn greedy(
    need: &Need<'_>,
    pledges: &mut [OpenPledge],
    candidates: &[usize],
    max_allocations: usize,
) -> Vec<(usize, u64)> {
    let mut unreserved = need.unreserved_fen;
    let mut out = Vec::new();
    for &i in candidates {
        if out.len() >= max_allocations {
            break;
        }
        let Some(p) = pledges.get_mut(i) else {
            continue;
        };
        if p.available == 0 || p.value_fen == 0 || !compatible(need, p) {
            continue;
        }
        let k = p
            .lessons_per_seat
            .min(p.available)
            .min(unreserved / p.value_fen);
        if k == 0 {
            continue;
        }
        p.available -= k;
        // k·v ≤ unreserved by the choice of k.
        unreserved -= k * p.value_fen;
        out.push((i, k));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pledge(subject: &str, district: Option<&str>, available: u64) -> OpenPledge {
        OpenPledge {
            subject: subject.into(),
            grade_min: 4,
            grade_max: 9,
            district: district.map(Into::into),
            lessons_per_seat: 20,
            value_fen: 20_000,
            available,
        }
    }

    fn need(unreserved_fen: u64) -> Need<'static> {
        Need {
            subject: "piano",
            grade: 6,
            district: "xuhui",
            accepts_online: false,
            accepted_districts: &["minhang"],
            unreserved_fen,
        }
    }

    #[test]
    fn takes_only_compatible_pledges() {
        let mut pool = vec![
            pledge("math", Some("xuhui"), 50),   // wrong subject
            pledge("piano", None, 50),           // online, not accepted
            pledge("piano", Some("pudong"), 50), // district not accepted
            pledge("piano", Some("minhang"), 50),
        ];
        let got = greedy(&need(1_000_000), &mut pool, &[0, 1, 2, 3], 3);
        assert_eq!(
            got,
            vec![(3, 20)],
            "one seat of the accepted district's pledge"
        );
    }

    #[test]
    fn grade_outside_band_is_incompatible() {
        let mut n = need(1_000_000);
        n.grade = 10;
        let mut pool = vec![pledge("piano", Some("xuhui"), 50)];
        assert!(greedy(&n, &mut pool, &[0], 3).is_empty());
    }

    #[test]
    fn k_is_bounded_by_capacity_and_value() {
        let mut pool = vec![
            pledge("piano", Some("xuhui"), 3),
            pledge("piano", Some("xuhui"), 50),
        ];
        // 3 left on the first; 5 more lessons' worth (100,000 fen) on the second.
        let got = greedy(&need(160_000), &mut pool, &[0, 1], 3);
        assert_eq!(got, vec![(0, 3), (1, 5)]);
        assert_eq!((pool[0].available, pool[1].available), (0, 45));
    }

    #[test]
    fn too_little_value_for_one_lesson_stays_unmatched() {
        let mut pool = vec![pledge("piano", Some("xuhui"), 50)];
        assert!(greedy(&need(19_999), &mut pool, &[0], 3).is_empty());
        assert_eq!(pool[0].available, 50);
    }

    #[test]
    fn respects_max_allocations() {
        let mut pool = vec![pledge("piano", Some("xuhui"), 1); 5];
        assert_eq!(
            greedy(&need(1_000_000), &mut pool, &[0, 1, 2, 3, 4], 2).len(),
            2
        );
    }
}
