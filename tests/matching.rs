//! The matcher (issue 5), as the issue states it: every allocation compatible, within the
//! pledge's lessons, the claim's unreserved value and one seat; matched value at most the
//! relaxation bound and at least the greedy; on tiny instances, against the brute-force
//! integer optimum (gap printed); determinism across runs and input orders; the fairness
//! policy; the tie-break order; each input error with its code; and the plans accepted by
//! the real `allocation_made` rules.
//!
//! The checks below are written from the issue, independently of the matcher's code: a
//! naive reference greedy cross-checks the matcher's own, and a brute force its value.
//! Randomness is proptest's, seeded by proptest (failures print their seed) or fixed
//! seeds for the statistics.

use std::collections::{BTreeMap, HashMap, HashSet};

use lesson_ledger::ledger::invariants::check_invariants;
use lesson_ledger::ledger::objects::{Claim, Pledge};
use lesson_ledger::ledger::{apply_entry, get_object, EntryContext, Fen, Id, Lessons, MemoryState};
use lesson_ledger::matching::{
    match_claims, ClaimInput, Fairness, MatchError, MatchParams, Matching, PledgeInput,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const T: u64 = 1_700_000_000_000_000;
const DISTRICTS: [&str; 3] = ["xuhui", "minhang", "pudong"];
const SUBJECTS: [&str; 2] = ["math", "art"];

fn id(s: &str) -> Id {
    Id::new("id", s).unwrap()
}

fn claim(n: usize, u: u64) -> ClaimInput {
    ClaimInput {
        claim: id(&format!("c-{n:04}")),
        student: id(&format!("stu-{n:04x}")),
        closed_at: 10,
        subject: id("math"),
        grade: 5,
        district: id("xuhui"),
        accepts_online: true,
        accepted_districts: vec![],
        unreserved_fen: Fen(u),
        preferences: None,
    }
}

fn pledge(n: usize, v: u64, available: u64, per_seat: u64) -> PledgeInput {
    PledgeInput {
        pledge: id(&format!("p-{n:04}")),
        institution: id("inst-0007"),
        subject: id("math"),
        grade_min: 4,
        grade_max: 6,
        district: Some(id("xuhui")),
        online: false,
        available_lessons: Lessons(available),
        lessons_per_seat: per_seat,
        value_per_lesson_fen: Fen(v),
        valid_from_micros: T - 1,
        valid_until_micros: T + 1,
        approved: true,
        banned: false,
    }
}

fn online(mut p: PledgeInput) -> PledgeInput {
    p.district = None;
    p.online = true;
    p
}

fn plain(at: u64) -> MatchParams {
    MatchParams {
        at_micros: at,
        fairness: Fairness::None,
    }
}

fn capped(at: u64, cap: u64) -> MatchParams {
    MatchParams {
        at_micros: at,
        fairness: Fairness::CappedFirstPass { cap_fen: Fen(cap) },
    }
}

/// The issue's compatibility, written from its text.
fn compatible(c: &ClaimInput, p: &PledgeInput, at: u64) -> bool {
    let place = match &p.district {
        Some(d) => *d == c.district || c.accepted_districts.contains(d),
        None => p.online && c.accepts_online,
    };
    c.subject == p.subject
        && (p.grade_min..=p.grade_max).contains(&c.grade)
        && place
        && p.approved
        && !p.banned
        && p.valid_from_micros <= at
        && at < p.valid_until_micros
        && c.unreserved_fen.0 >= p.value_per_lesson_fen.0
}

/// Locality rank as documented: own district, accepted district, online.
fn rank(c: &ClaimInput, p: &PledgeInput) -> u8 {
    match &p.district {
        Some(d) if *d == c.district => 0,
        Some(_) => 1,
        None => 2,
    }
}

/// Every plan is one allowed `allocation_made`, and the figures add up. Returns the
/// matched value.
fn check_plans(claims: &[ClaimInput], pledges: &[PledgeInput], at: u64, m: &Matching) -> u64 {
    let cs: HashMap<&Id, &ClaimInput> = claims.iter().map(|c| (&c.claim, c)).collect();
    let ps: HashMap<&Id, &PledgeInput> = pledges.iter().map(|p| (&p.pledge, p)).collect();
    let mut reserved: HashMap<&Id, u64> = HashMap::new();
    let mut taken: HashMap<&Id, u64> = HashMap::new();
    let mut pairs = HashSet::new();
    let mut total = 0u64;
    let mut students = HashSet::new();
    for a in &m.plans {
        let c = cs[&a.claim];
        let p = ps[&a.pledge];
        assert!(compatible(c, p, at), "incompatible plan {a:?}");
        assert!(
            a.lessons.0 >= 1,
            "an allocation holds whole lessons, at least one"
        );
        assert!(
            a.lessons.0 <= p.lessons_per_seat,
            "more than one seat: {a:?}"
        );
        assert_eq!(a.value_fen.0, a.lessons.0 * p.value_per_lesson_fen.0);
        assert!(
            pairs.insert((&a.claim, &a.pledge)),
            "two allocations of one pair"
        );
        *reserved.entry(&a.claim).or_default() += a.value_fen.0;
        *taken.entry(&a.pledge).or_default() += a.lessons.0;
        total += a.value_fen.0;
        students.insert(&c.student);
    }
    for (c, r) in &reserved {
        assert!(
            *r <= cs[c].unreserved_fen.0,
            "claim {c} over its unreserved value"
        );
    }
    for (p, k) in &taken {
        assert!(
            *k <= ps[p].available_lessons.0,
            "pledge {p} over its lessons"
        );
    }
    // Plans are listed in claim order (closure, claim id), then pledge id.
    let key = |a: &lesson_ledger::matching::AllocationPlan| {
        (cs[&a.claim].closed_at, a.claim.clone(), a.pledge.clone())
    };
    assert!(m.plans.windows(2).all(|w| key(&w[0]) < key(&w[1])));
    assert_eq!(m.report.matched_fen.0, total);
    assert_eq!(m.report.allocations, m.plans.len() as u64);
    assert_eq!(m.report.claims_served, reserved.len() as u64);
    assert_eq!(m.report.students_served, students.len() as u64);
    assert!(total <= m.report.bound_fen.0, "matched above the bound");
    total
}

/// The documented greedy, naively: claims in (closure, id) order; pledges dearest first,
/// then locality, then id; as many lessons as seat, offer and value allow; with a cap, a
/// first pass where a claim stays within the cap (its first lesson always allowed).
fn reference_greedy(claims: &[ClaimInput], pledges: &[PledgeInput], params: &MatchParams) -> u64 {
    let mut order: Vec<&ClaimInput> = claims.iter().collect();
    order.sort_by(|a, b| (a.closed_at, &a.claim).cmp(&(b.closed_at, &b.claim)));
    let mut left: BTreeMap<&Id, u64> = pledges
        .iter()
        .map(|p| (&p.pledge, p.available_lessons.0))
        .collect();
    let mut spent: HashMap<&Id, u64> = HashMap::new();
    let mut held: HashMap<(&Id, &Id), u64> = HashMap::new();
    let passes: Vec<Option<u64>> = match params.fairness {
        Fairness::None => vec![None],
        Fairness::CappedFirstPass { cap_fen } => vec![Some(cap_fen.0), None],
    };
    for cap in passes {
        for c in &order {
            let mut ps: Vec<&PledgeInput> = pledges
                .iter()
                .filter(|p| compatible(c, p, params.at_micros))
                .collect();
            ps.sort_by(|a, b| {
                (b.value_per_lesson_fen, rank(c, a), &a.pledge).cmp(&(
                    a.value_per_lesson_fen,
                    rank(c, b),
                    &b.pledge,
                ))
            });
            for p in ps {
                let v = p.value_per_lesson_fen.0;
                let s = *spent.get(&c.claim).unwrap_or(&0);
                let h = *held.get(&(&c.claim, &p.pledge)).unwrap_or(&0);
                let unres = c.unreserved_fen.0 - s;
                let budget = match cap {
                    Some(cap) => {
                        let allowed = if s == 0 { cap.max(v) } else { cap };
                        unres.min(allowed.saturating_sub(s))
                    }
                    None => unres,
                };
                let x = (budget / v)
                    .min(p.lessons_per_seat - h)
                    .min(left[&p.pledge]);
                if x > 0 {
                    *left.get_mut(&p.pledge).unwrap() -= x;
                    *spent.entry(&c.claim).or_default() += x * v;
                    *held.entry((&c.claim, &p.pledge)).or_default() += x;
                }
            }
        }
    }
    spent.values().sum()
}

/// The integer optimum by exhaustive search (tiny instances only).
fn brute_force(claims: &[ClaimInput], pledges: &[PledgeInput], at: u64) -> u64 {
    let pairs: Vec<(usize, usize)> = (0..claims.len())
        .flat_map(|i| (0..pledges.len()).map(move |j| (i, j)))
        .filter(|&(i, j)| compatible(&claims[i], &pledges[j], at))
        .collect();
    fn go(
        k: usize,
        pairs: &[(usize, usize)],
        pledges: &[PledgeInput],
        unres: &mut Vec<u64>,
        avail: &mut Vec<u64>,
    ) -> u64 {
        if k == pairs.len() {
            return 0;
        }
        let (i, j) = pairs[k];
        let v = pledges[j].value_per_lesson_fen.0;
        let most = (unres[i] / v)
            .min(avail[j])
            .min(pledges[j].lessons_per_seat);
        let mut best = 0;
        for x in 0..=most {
            unres[i] -= x * v;
            avail[j] -= x;
            best = best.max(x * v + go(k + 1, pairs, pledges, unres, avail));
            unres[i] += x * v;
            avail[j] += x;
        }
        best
    }
    let mut unres: Vec<u64> = claims.iter().map(|c| c.unreserved_fen.0).collect();
    let mut avail: Vec<u64> = pledges.iter().map(|p| p.available_lessons.0).collect();
    go(0, &pairs, pledges, &mut unres, &mut avail)
}

/// A random small instance: few subjects, districts and grades so that claims compete.
fn instance(
    max_claims: usize,
    max_pledges: usize,
) -> impl Strategy<Value = (Vec<ClaimInput>, Vec<PledgeInput>)> {
    let c = (
        0..2usize,
        4..=6u64,
        0..3usize,
        any::<bool>(),
        0..8u8,
        0..3u64,
        1..=40u64,
        0..4u8,
    );
    let p = (
        0..2usize,
        4..=6u64,
        0..3u64,
        0..4usize,
        0..=8u64,
        1..=4u64,
        1..=8u64,
        0..20u8,
    );
    (
        prop::collection::vec(c, 1..=max_claims),
        prop::collection::vec(p, 1..=max_pledges),
    )
        .prop_map(|(cs, ps)| {
            let claims = cs
                .into_iter()
                .enumerate()
                .map(|(n, (s, g, d, on, mask, closed, u, stu))| ClaimInput {
                    claim: id(&format!("c-{n:04}")),
                    // Some students hold two claims.
                    student: id(&format!("stu-{:04x}", n as u8 % 4 + stu)),
                    closed_at: closed,
                    subject: id(SUBJECTS[s]),
                    grade: g,
                    district: id(DISTRICTS[d]),
                    accepts_online: on,
                    accepted_districts: (0..3)
                        .filter(|b| mask & (1 << b) != 0 && *b != d)
                        .map(|b| id(DISTRICTS[b]))
                        .collect(),
                    unreserved_fen: Fen(u * 500),
                    preferences: None,
                })
                .collect();
            let pledges = ps
                .into_iter()
                .enumerate()
                .map(|(n, (s, g, w, d, avail, seat, v, flags))| PledgeInput {
                    pledge: id(&format!("p-{n:04}")),
                    institution: id("inst-0007"),
                    subject: id(SUBJECTS[s]),
                    grade_min: g,
                    grade_max: (g + w).min(12),
                    district: (d < 3).then(|| id(DISTRICTS[d])),
                    online: d == 3,
                    available_lessons: Lessons(avail),
                    lessons_per_seat: seat,
                    value_per_lesson_fen: Fen(v * 500),
                    // flags: 0 not approved, 1 banned, 2 expired, 3 not yet valid.
                    valid_from_micros: if flags == 3 { T + 1 } else { T - 5 },
                    valid_until_micros: if flags == 2 { T } else { T + 5 },
                    approved: flags != 0,
                    banned: flags == 1,
                })
                .collect();
            (claims, pledges)
        })
}

/// A tiny instance where every pair is close to compatible: one subject and grade, all
/// pledges eligible, so that the knapsack effects of whole lessons show.
fn dense() -> impl Strategy<Value = (Vec<ClaimInput>, Vec<PledgeInput>)> {
    (
        prop::collection::vec((0..3usize, any::<bool>(), 1..=24u64), 2..=3),
        prop::collection::vec((0..4usize, 0..=4u64, 1..=3u64, 1..=8u64), 2..=3),
    )
        .prop_map(|(cs, ps)| {
            let claims = cs
                .into_iter()
                .enumerate()
                .map(|(n, (d, on, u))| {
                    let mut c = claim(n, u * 500);
                    c.district = id(DISTRICTS[d]);
                    c.accepts_online = on;
                    c.accepted_districts = vec![id(DISTRICTS[(d + 1) % 3])];
                    c
                })
                .collect();
            let pledges = ps
                .into_iter()
                .enumerate()
                .map(|(n, (d, avail, seat, v))| {
                    let p = pledge(n, v * 500, avail, seat);
                    if d == 3 {
                        online(p)
                    } else {
                        PledgeInput {
                            district: Some(id(DISTRICTS[d])),
                            ..p
                        }
                    }
                })
                .collect();
            (claims, pledges)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_are_allowed_bounded_and_at_least_the_greedy(
        (claims, pledges) in instance(40, 10),
        cap in prop::option::of(1..=20u64),
    ) {
        let params = match cap {
            Some(c) => capped(T, c * 500),
            None => plain(T),
        };
        let m = match_claims(&claims, &pledges, &params).unwrap();
        let total = check_plans(&claims, &pledges, T, &m);
        let greedy = reference_greedy(&claims, &pledges, &params);
        prop_assert_eq!(m.report.greedy_fen.0, greedy, "the matcher's greedy is the documented one");
        prop_assert!(total >= greedy, "matched {} below greedy {}", total, greedy);
        prop_assert!(m.report.ratio_ppm <= 1_000_000);
    }

    #[test]
    fn the_same_input_in_any_order_gives_the_same_bytes(
        (claims, pledges) in instance(12, 6),
        seed in any::<u64>(),
    ) {
        let params = capped(T, 2_000);
        let a = serde_json::to_vec(&match_claims(&claims, &pledges, &params).unwrap()).unwrap();
        let again = serde_json::to_vec(&match_claims(&claims, &pledges, &params).unwrap()).unwrap();
        prop_assert_eq!(&a, &again);
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut c2, mut p2) = (claims.clone(), pledges.clone());
        c2.shuffle(&mut rng);
        p2.shuffle(&mut rng);
        let b = serde_json::to_vec(&match_claims(&c2, &p2, &params).unwrap()).unwrap();
        prop_assert_eq!(a, b);
    }

    /// The capped first pass: within a class (same subject, grade, district, accepted
    /// districts, online acceptance), a claim holds more than the cap (or more than one
    /// lesson, if dearer) only if every claim of its class able to buy a lesson of the
    /// pledges it holds has been served.
    #[test]
    fn no_claim_goes_past_the_cap_while_its_class_goes_unserved(
        (claims, pledges) in instance(40, 10),
        cap in 1..=10u64,
    ) {
        let cap = cap * 500;
        let m = match_claims(&claims, &pledges, &capped(T, cap)).unwrap();
        check_plans(&claims, &pledges, T, &m);
        let vp: HashMap<&Id, u64> =
            pledges.iter().map(|p| (&p.pledge, p.value_per_lesson_fen.0)).collect();
        let mut got: HashMap<&Id, (u64, u64)> = HashMap::new(); // (value, dearest lesson)
        for a in &m.plans {
            let e = got.entry(&a.claim).or_default();
            e.0 += a.value_fen.0;
            e.1 = e.1.max(vp[&a.pledge]);
        }
        let class = |c: &ClaimInput| {
            let mut d: Vec<Id> = c.accepted_districts.clone();
            d.sort();
            (c.subject.clone(), c.grade, c.district.clone(), d, c.accepts_online)
        };
        for a in &claims {
            let Some(&(value, dearest)) = got.get(&a.claim) else { continue };
            if value <= cap.max(dearest) {
                continue;
            }
            for b in claims.iter().filter(|b| class(b) == class(a)) {
                prop_assert!(
                    b.unreserved_fen.0 < dearest || got.contains_key(&b.claim),
                    "{} holds {} fen (cap {}) while {} of its class got nothing",
                    a.claim, value, cap, b.claim
                );
            }
        }
    }
}

#[test]
fn tiny_instances_against_the_integer_optimum() {
    // Fixed seeds: the printed figures are reproducible.
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        ProptestConfig::with_cases(1),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[7; 32],
        ),
    );
    let strategy = dense();
    let (mut n, mut exact, mut sum_ratio_ppm, mut worst_ppm) = (0u64, 0u64, 0u64, 1_000_000u64);
    let (mut positive, mut nontrivial) = (0u64, 0u64);
    for _ in 0..400 {
        let (claims, pledges) = strategy.new_tree(&mut runner).unwrap().current();
        for params in [plain(T), capped(T, 1_500)] {
            let m = match_claims(&claims, &pledges, &params).unwrap();
            let total = check_plans(&claims, &pledges, T, &m);
            let opt = brute_force(&claims, &pledges, T);
            assert!(total <= opt, "above the integer optimum: {total} > {opt}");
            assert!(opt <= m.report.bound_fen.0, "the bound is not a bound");
            let ppm = (total * 1_000_000).checked_div(opt).unwrap_or(1_000_000);
            n += 1;
            exact += u64::from(total == opt);
            nontrivial += u64::from(opt > 0 && opt < m.report.bound_fen.0);
            positive += u64::from(opt > 0);
            sum_ratio_ppm += ppm;
            worst_ppm = worst_ppm.min(ppm);
        }
    }
    let mean = sum_ratio_ppm / n;
    println!(
        "tiny instances: {n} runs ({positive} with a positive optimum, {nontrivial} with the optimum below the bound), optimum reached in {exact}, mean matched/optimum {}.{:02}%, worst {}.{:02}%",
        mean / 10_000,
        mean % 10_000 / 100,
        worst_ppm / 10_000,
        worst_ppm % 10_000 / 100
    );
    assert!(mean >= 970_000, "mean gap to the optimum grew: {mean} ppm");
}

#[test]
fn whole_lessons_stranded_by_dearest_first_are_exchanged() {
    // One claim of 1,000 yuan; lessons of 600 (one seat of 1) and 500 yuan (seat of 2).
    // The relaxation reaches 1,000; the best whole-lesson plan is 2 × 500.
    let c = [claim(1, 100_000)];
    let p = [pledge(1, 60_000, 1, 1), pledge(2, 50_000, 10, 2)];
    let m = match_claims(&c, &p, &plain(T)).unwrap();
    check_plans(&c, &p, T, &m);
    assert_eq!(m.report.bound_fen, Fen(100_000));
    // Dearest first takes 600 and strands 400 (the greedy stops there); the exchange
    // pass gives the 600 back for 2 × 500.
    assert_eq!(m.report.greedy_fen, Fen(60_000));
    assert_eq!(m.report.matched_fen, Fen(100_000));
    assert_eq!(brute_force(&c, &p, T), 100_000);
    assert_eq!(m.plans.len(), 1);
    assert_eq!(
        (m.plans[0].pledge.as_str(), m.plans[0].lessons),
        ("p-0002", Lessons(2))
    );
}

#[test]
fn the_flow_beats_the_greedy_when_order_misleads_it() {
    // Claim 1 comes first and would take the only lessons claim 2 can use.
    let mut c1 = claim(1, 40_000);
    c1.accepted_districts = vec![id("minhang")];
    let mut c2 = claim(2, 40_000);
    c2.district = id("pudong");
    c2.accepts_online = false;
    let mut local = pledge(1, 20_000, 2, 2);
    local.district = Some(id("pudong"));
    c1.accepted_districts.push(id("pudong"));
    let far = {
        let mut p = pledge(2, 20_000, 2, 2);
        p.district = Some(id("minhang"));
        p
    };
    let c = [c1, c2];
    let p = [local, far];
    let m = match_claims(&c, &p, &plain(T)).unwrap();
    check_plans(&c, &p, T, &m);
    assert_eq!(m.report.bound_fen, Fen(80_000));
    assert_eq!(m.report.matched_fen, Fen(80_000));
    assert_eq!(m.report.greedy_fen, Fen(40_000));
    assert_eq!(m.report.students_served, 2);
}

#[test]
fn a_cap_spreads_a_scarce_pledge_over_more_students() {
    let c: Vec<ClaimInput> = (1..=5).map(|n| claim(n, 1_000_000)).collect();
    let p = [pledge(1, 10_000, 10, 10)];
    let greedy = match_claims(&c, &p, &plain(T)).unwrap();
    assert_eq!(
        greedy.plans.len(),
        1,
        "without a cap the first claim takes the seat"
    );
    assert_eq!(greedy.plans[0].lessons, Lessons(10));
    let fair = match_claims(&c, &p, &capped(T, 20_000)).unwrap();
    check_plans(&c, &p, T, &fair);
    assert_eq!(fair.report.students_served, 5);
    assert!(fair.plans.iter().all(|a| a.lessons == Lessons(2)));
    assert_eq!(
        fair.report.matched_fen, greedy.report.matched_fen,
        "value is kept"
    );
}

#[test]
fn ties_go_to_the_earliest_closure_then_the_smallest_claim_id() {
    let mut early = claim(9, 10_000);
    early.closed_at = 3;
    let later = claim(1, 10_000);
    let p = [pledge(1, 10_000, 1, 1)];
    let m = match_claims(&[later.clone(), early.clone()], &p, &plain(T)).unwrap();
    assert_eq!(m.plans[0].claim, early.claim);
    let (a, b) = (claim(2, 10_000), claim(1, 10_000));
    let m = match_claims(&[a, b.clone()], &p, &plain(T)).unwrap();
    assert_eq!(m.plans[0].claim, b.claim);
}

#[test]
fn in_district_before_online_at_equal_value() {
    let c = [claim(1, 30_000)];
    // The online pledge sorts first by id; the district one must still win.
    let p = [online(pledge(1, 10_000, 5, 5)), pledge(2, 10_000, 5, 5)];
    for params in [plain(T), capped(T, 1)] {
        let m = match_claims(&c, &p, &params).unwrap();
        assert_eq!(m.plans.len(), 1);
        assert_eq!(m.plans[0].pledge, id("p-0002"));
        assert_eq!(m.report.online_fen, Fen(0));
    }
}

#[test]
fn each_incompatibility_keeps_a_pair_apart() {
    type Edit = fn(&mut ClaimInput, &mut PledgeInput);
    let cases: [(&str, Edit); 12] = [
        ("other subject", |_, p| p.subject = id("art")),
        ("grade below band", |c, _| c.grade = 3),
        ("grade above band", |c, _| c.grade = 7),
        ("district not accepted", |_, p| {
            p.district = Some(id("pudong"))
        }),
        ("online not accepted", |c, p| {
            c.accepts_online = false;
            p.district = None;
            p.online = true;
        }),
        ("not approved", |_, p| p.approved = false),
        ("banned donor", |_, p| p.banned = true),
        ("not yet valid", |_, p| p.valid_from_micros = T + 1),
        ("valid_until is exclusive", |_, p| p.valid_until_micros = T),
        ("no lesson left", |_, p| p.available_lessons = Lessons(0)),
        ("value buys no lesson", |c, _| c.unreserved_fen = Fen(9_999)),
        ("nothing unreserved", |c, _| c.unreserved_fen = Fen(0)),
    ];
    for (what, edit) in cases {
        let (mut c, mut p) = (claim(1, 50_000), pledge(1, 10_000, 5, 5));
        assert_eq!(
            match_claims(&[c.clone()], &[p.clone()], &plain(T))
                .unwrap()
                .plans
                .len(),
            1
        );
        edit(&mut c, &mut p);
        let m = match_claims(&[c], &[p], &plain(T)).unwrap();
        assert!(m.plans.is_empty(), "{what}: {:?}", m.plans);
        assert_eq!(m.report.bound_fen, Fen(0), "{what}");
    }
    // An accepted neighbouring district, and online when accepted, do match.
    let mut c = claim(1, 50_000);
    c.accepted_districts = vec![id("pudong")];
    let mut p = pledge(1, 10_000, 5, 5);
    p.district = Some(id("pudong"));
    assert_eq!(
        match_claims(&[c.clone()], &[p], &plain(T))
            .unwrap()
            .plans
            .len(),
        1
    );
    let p = online(pledge(1, 10_000, 5, 5));
    assert_eq!(match_claims(&[c], &[p], &plain(T)).unwrap().plans.len(), 1);
}

#[test]
fn input_the_ledger_cannot_hold_is_refused_with_its_code() {
    let code = |c: Vec<ClaimInput>, p: Vec<PledgeInput>| {
        match_claims(&c, &p, &plain(T))
            .map(|_| ())
            .unwrap_err()
            .code()
    };
    let (c, p) = (claim(1, 50_000), pledge(1, 10_000, 5, 5));
    assert_eq!(
        code(vec![c.clone(), c.clone()], vec![p.clone()]),
        "duplicate_claim"
    );
    assert_eq!(
        code(vec![c.clone()], vec![p.clone(), p.clone()]),
        "duplicate_pledge"
    );
    for g in [0, 13] {
        let mut bad = c.clone();
        bad.grade = g;
        assert_eq!(code(vec![bad], vec![p.clone()]), "grade_out_of_range");
        let mut bad = p.clone();
        bad.grade_max = g;
        assert_eq!(code(vec![c.clone()], vec![bad]), "grade_out_of_range");
    }
    let mut bad = c.clone();
    bad.unreserved_fen = Fen(1_000 * 1_000_000 + 1);
    assert_eq!(code(vec![bad], vec![p.clone()]), "unreserved_out_of_range");
    for v in [0, 1_000_001] {
        let mut bad = p.clone();
        bad.value_per_lesson_fen = Fen(v);
        assert_eq!(
            code(vec![c.clone()], vec![bad]),
            "pledge_value_out_of_range"
        );
    }
    for s in [0, 1_001] {
        let mut bad = p.clone();
        bad.lessons_per_seat = s;
        assert_eq!(
            code(vec![c.clone()], vec![bad]),
            "pledge_lessons_out_of_range"
        );
    }
    let mut bad = p.clone();
    bad.available_lessons = Lessons(10_000 * 1_000 + 1);
    assert_eq!(
        code(vec![c.clone()], vec![bad]),
        "pledge_lessons_out_of_range"
    );
    // 65 districts: one more than a u64 mask (and the genesis limit) holds.
    let many: Vec<ClaimInput> = (0..65)
        .map(|n| {
            let mut x = claim(n, 50_000);
            x.district = id(&format!("d-{n:02}"));
            x
        })
        .collect();
    assert_eq!(code(many, vec![p.clone()]), "too_many_districts");
    let pledges: Vec<PledgeInput> = (0..100_001).map(|n| pledge(n, 10_000, 1, 1)).collect();
    assert_eq!(code(vec![c.clone()], pledges), "too_many_pledges");
    // The cap counts eligible pledges only (issue 11, item 2): 100,001 pledges nobody
    // approved, or of a banned donor, beside one eligible pledge, stop nothing.
    let mut flood: Vec<PledgeInput> = (1..=100_001)
        .map(|n| {
            let mut x = pledge(n, 10_000, 1, 1);
            if n % 2 == 0 {
                x.approved = false;
            } else {
                x.banned = true;
            }
            x
        })
        .collect();
    flood.push(pledge(0, 10_000, 1, 1));
    let m = match_claims(&[c], &flood, &plain(T)).unwrap();
    assert_eq!(m.report.pledges_eligible, 1);
    assert_eq!(m.plans.len(), 1);
    // too_many_claims (4,000,001 claims, about 1 GiB of input) is not built here; its
    // check is the same one-line comparison as too_many_pledges.
    let e = MatchError::TooManyClaims { count: 1, max: 0 };
    assert_eq!(e.code(), "too_many_claims");
}

/// The plans of a real ledger state, submitted as `allocation_made` entries to the real
/// rules: every one is accepted and the balance invariants hold afterwards.
mod through_the_rules {
    use super::*;
    use serde_json::{json, Value};

    const EVIDENCE: &str = "4f6c2b0d9e8a7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291817161514131211100f";

    use crate::support::vkey;

    struct World {
        state: MemoryState,
        time: u64,
        index: u64,
        keys: HashMap<String, String>,
    }

    impl World {
        fn ok(&mut self, signers: &[&str], mut payload: Value) {
            payload["id"] = json!(format!("e-{:05}", self.index));
            payload["ledger"] = json!("ledger.example/sh-2021");
            let ctx = EntryContext {
                index: self.index,
                time_micros: self.time,
                signers: signers.iter().map(|s| self.keys[*s].clone()).collect(),
            };
            self.time += 1_000_000;
            self.index += 1;
            let bytes = serde_json::to_vec(&payload).unwrap();
            if let Err(e) = apply_entry(&mut self.state, &ctx, &bytes) {
                panic!("refused ({}): {e}\n{payload}", e.code());
            }
        }
        fn party(&mut self, name: &str, role: &str, seed: u8) {
            self.keys.insert(name.to_owned(), vkey(name, seed));
            let key = self.keys[name].clone();
            self.ok(
                &["operator", "assoc-01", name],
                json!({"kind": "party_registered", "party": name, "role": role, "key": key}),
            );
        }
    }

    #[test]
    fn every_plan_is_accepted_by_allocation_made() {
        let mut w = World {
            state: MemoryState::new(),
            time: T,
            index: 0,
            keys: HashMap::new(),
        };
        w.keys.insert("operator".into(), vkey("operator", 1));
        w.keys.insert("assoc-01".into(), vkey("assoc-01", 9));
        let op = w.keys["operator"].clone();
        let assoc = w.keys["assoc-01"].clone();
        w.ok(
            &["operator", "assoc-01"],
            json!({"kind": "genesis", "origin": "ledger.example/sh-2021",
            "operator": "operator", "operator_key": op, "confirmation_window_days": 15,
            "allocation_validity_days": 90, "unit": "CNY-fen",
            "districts": DISTRICTS, "subjects": SUBJECTS,
            "associations": [{"party": "assoc-01", "key": assoc}]}),
        );
        w.party("inst-0001", "institution", 2);
        w.party("inst-0007", "institution", 3);
        w.party("inst-0009", "institution", 4);
        w.ok(&["operator"], json!({"kind": "institution_closed", "institution": "inst-0001", "reason": "abnormal_closure"}));
        for i in ["inst-0007", "inst-0009"] {
            w.ok(&["operator"], json!({"kind": "institution_whitelisted", "institution": i, "reason": "approved_donor"}));
        }
        let mut rng = StdRng::seed_from_u64(5);
        let mut claims = Vec::new();
        for n in 0..24u8 {
            let stu = format!("stu-{n:04x}");
            w.party(&stu, "student", 10 + n);
            let d = usize::from(n % 3);
            let c = format!("c-{n:04}");
            w.ok(&["operator", &stu, "assoc-01"], json!({"kind": "claim_recorded", "claim": c, "student": stu,
                "institution": "inst-0001", "lessons": rng.gen_range(1..=30u64),
                "price_per_lesson_fen": rng.gen_range(10..=60u64) * 1_000,
                "subject": SUBJECTS[usize::from(n % 2)], "grade": rng.gen_range(4..=6u64),
                "district": DISTRICTS[d], "evidence_digest": EVIDENCE,
                "accepts_online": rng.gen_bool(0.6),
                "accepted_districts": if rng.gen_bool(0.5) { vec![DISTRICTS[(d + 1) % 3]] } else { vec![] }}));
            claims.push(c);
        }
        let mut pledges = Vec::new();
        for n in 0..8u8 {
            let inst = if n % 2 == 0 { "inst-0007" } else { "inst-0009" };
            let p = format!("p-{n:04}");
            let mut body = json!({"kind": "pledge_offered", "pledge": p, "institution": inst,
                "subject": SUBJECTS[usize::from(n % 2)], "grade_min": 4, "grade_max": rng.gen_range(4..=6u64),
                "seats": rng.gen_range(1..=4u64), "lessons_per_seat": rng.gen_range(2..=12u64),
                "value_per_lesson_fen": rng.gen_range(10..=60u64) * 1_000,
                "valid_from_micros": T, "valid_until_micros": T + 400 * 86_400 * 1_000_000});
            if n % 3 == 0 {
                body["online"] = json!(true);
            } else {
                body["district"] = json!(DISTRICTS[usize::from(n % 3)]);
            }
            w.ok(&[inst], body);
            w.ok(
                &["operator"],
                json!({"kind": "pledge_approved", "pledge": p}),
            );
            pledges.push(p);
        }
        // The matcher's input, read from the state.
        let ci: Vec<ClaimInput> = claims
            .iter()
            .map(|c| {
                let claim: Claim = get_object(&w.state, c).unwrap().unwrap();
                ClaimInput::from_claim(&claim, 4)
            })
            .collect();
        let pi: Vec<PledgeInput> = pledges
            .iter()
            .map(|p| {
                let pledge: Pledge = get_object(&w.state, p).unwrap().unwrap();
                PledgeInput::from_pledge(&pledge, false)
            })
            .collect();
        let m = match_claims(&ci, &pi, &capped(w.time, 50_000)).unwrap();
        check_plans(&ci, &pi, w.time, &m);
        assert!(
            m.plans.len() >= 8,
            "the fixture should match plenty: {}",
            m.plans.len()
        );
        for (n, a) in m.plans.iter().enumerate() {
            // Made by hand (no run): co-signed by an association.
            w.ok(
                &["operator", "assoc-01"],
                json!({"kind": "allocation_made", "allocation": format!("a-{n:04}"),
                "claim": a.claim, "pledge": a.pledge, "lessons": a.lessons}),
            );
        }
        check_invariants(&w.state).unwrap();
    }
}

#[test]
fn match_parameters_round_trip_and_refuse_unknown_or_missing_fields() {
    // A match run records its parameters so that `verify` can replay it.
    let params = capped(T, 200_000);
    let text = serde_json::to_string(&params).unwrap();
    assert_eq!(
        text,
        r#"{"at_micros":1700000000000000,"fairness":{"capped_first_pass":{"cap_fen":200000}}}"#
    );
    assert_eq!(serde_json::from_str::<MatchParams>(&text).unwrap(), params);
    let none = r#"{"at_micros":5,"fairness":"none"}"#;
    assert_eq!(serde_json::from_str::<MatchParams>(none).unwrap(), plain(5));
    for bad in [
        r#"{"at_micros":5,"fairness":"none","seed":1}"#,
        r#"{"at_micros":5}"#,
        r#"{"at_micros":5,"fairness":{"capped_first_pass":{}}}"#,
        r#"{"at_micros":5,"fairness":{"capped_first_pass":{"cap_fen":1,"x":2}}}"#,
        r#"{"at_micros":-1,"fairness":"none"}"#,
        r#"{"at_micros":5,"fairness":"fastest"}"#,
    ] {
        assert!(serde_json::from_str::<MatchParams>(bad).is_err(), "{bad}");
    }
}
