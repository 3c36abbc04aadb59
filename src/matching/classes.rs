//! Step 1: the problem prepared — input validated, claims and pledges in canonical
//! order, claims aggregated into classes of interchangeable claims, each class with its
//! compatible pledges — and the working state a solution is built in.

use std::collections::HashMap;

use rayon::prelude::*;

use super::error::MatchError;
use super::types::{
    ClaimInput, Fairness, MatchParams, PledgeInput, MATCH_CLAIMS_MAX, MATCH_DISTRICTS_MAX,
    MATCH_PLEDGES_MAX, PLEDGE_LESSONS_MAX, UNRESERVED_FEN_MAX,
};
use crate::ledger::limits::{
    CLAIM_LESSONS_MAX, GRADE_MAX, GRADE_MIN, LESSONS_PER_SEAT_MAX, PRICE_PER_LESSON_FEN_MAX,
};
use crate::ledger::units::Id;

/// Locality rank of a pledge for a class: own district, other accepted district, online.
pub(super) const RANK_ONLINE: u8 = 2;

/// A claim's compatibility key plus the derived data of its class.
#[derive(Debug)]
pub(super) struct Class {
    /// Accepted subjects, most wanted first (the claim's own alone without preferences).
    pub(super) subjects: Vec<u32>,
    /// Requested pledges (eligible ones only), most wanted first.
    pub(super) requests: Vec<u32>,
    pub(super) grade: u8,
    pub(super) own: u8,
    pub(super) mask: u64,
    pub(super) online: bool,
    /// Claim indices, in claim order.
    pub(super) claims: Vec<u32>,
    /// Compatible pledges `(pledge, rank)`, dearest first, then rank, then pledge order.
    pub(super) pledges: Vec<(u32, u8)>,
}

/// Per-claim and per-pledge residual state of a solution being built.
#[derive(Debug, Clone)]
pub(super) struct State {
    pub(super) unreserved: Vec<u64>,
    pub(super) available: Vec<u64>,
    /// Per claim: `(pledge, lessons)`.
    pub(super) held: Vec<Vec<(u32, u32)>>,
}

/// The prepared problem: claims and pledges in their canonical orders.
pub(super) struct Problem<'a> {
    pub(super) claims: Vec<&'a ClaimInput>,
    pub(super) pledges: Vec<&'a PledgeInput>,
    /// Per claim: its class.
    pub(super) class_of: Vec<u32>,
    pub(super) classes: Vec<Class>,
    /// Per pledge: value per lesson, seat (lessons) cap.
    pub(super) value: Vec<u64>,
    pub(super) seat: Vec<u64>,
    pub(super) cap: Option<u64>,
}

/// Validate, filter, sort into canonical order, and group claims into classes.
pub(super) fn prepare<'a>(
    claims: &'a [ClaimInput],
    pledges: &'a [PledgeInput],
    params: &MatchParams,
) -> Result<Problem<'a>, MatchError> {
    validate(claims, pledges)?;
    let (mut cl, mut pl) = canonical_order(claims, pledges)?;
    let mut names = Names::default();
    eligible_pledges(&mut pl, params)?;
    let mut pledge_district: Vec<Option<u8>> = Vec::with_capacity(pl.len());
    let mut pledge_subject: Vec<u32> = Vec::with_capacity(pl.len());
    for p in pl.iter().copied() {
        pledge_district.push(match &p.district {
            Some(d) => Some(names.district(d)?),
            None => None,
        });
        pledge_subject.push(names.subject(&p.subject)?);
    }
    cl.retain(|c| c.unreserved_fen.0 > 0);
    let (mut classes, class_of) = group_into_classes(&cl, &pl, &mut names)?;
    let by_subject_grade = by_subject_grade(&pl, &pledge_subject)?;
    let value: Vec<u64> = pl.iter().map(|p| p.value_per_lesson_fen.0).collect();
    let seat: Vec<u64> = pl
        .iter()
        .map(|p| p.lessons_per_seat.min(CLAIM_LESSONS_MAX))
        .collect();
    let online_pledge: Vec<bool> = pl.iter().map(|p| p.online).collect();
    classes.par_iter_mut().for_each(|class| {
        compatible_pledges(
            class,
            &cl,
            &by_subject_grade,
            &pledge_district,
            &online_pledge,
            &value,
        );
    });
    let cap = match params.fairness {
        Fairness::None => None,
        Fairness::CappedFirstPass { cap_fen } => Some(cap_fen.0),
    };
    Ok(Problem {
        claims: cl,
        pledges: pl,
        class_of,
        classes,
        value,
        seat,
        cap,
    })
}

/// The input's bounds: claim count, grades, values and lessons within what the rules
/// allow (the pledge count is checked once ineligible pledges are dropped).
fn validate(claims: &[ClaimInput], pledges: &[PledgeInput]) -> Result<(), MatchError> {
    if claims.len() > MATCH_CLAIMS_MAX {
        return Err(MatchError::TooManyClaims {
            count: claims.len(),
            max: MATCH_CLAIMS_MAX,
        });
    }
    let grades = u64::from(GRADE_MIN)..=u64::from(GRADE_MAX);
    for c in claims {
        if !grades.contains(&c.grade) {
            return Err(MatchError::GradeOutOfRange {
                what: "claim",
                id: c.claim.to_string(),
                grade: c.grade,
            });
        }
        if c.unreserved_fen.0 > UNRESERVED_FEN_MAX {
            return Err(MatchError::UnreservedOutOfRange {
                claim: c.claim.to_string(),
                value: c.unreserved_fen.0,
                max: UNRESERVED_FEN_MAX,
            });
        }
    }
    pledges.iter().try_for_each(validate_pledge)
}

/// One pledge's grades, value per lesson and lessons.
fn validate_pledge(p: &PledgeInput) -> Result<(), MatchError> {
    let grades = u64::from(GRADE_MIN)..=u64::from(GRADE_MAX);
    for g in [p.grade_min, p.grade_max] {
        if !grades.contains(&g) {
            return Err(MatchError::GradeOutOfRange {
                what: "pledge",
                id: p.pledge.to_string(),
                grade: g,
            });
        }
    }
    if !(1..=PRICE_PER_LESSON_FEN_MAX).contains(&p.value_per_lesson_fen.0) {
        return Err(MatchError::PledgeValueOutOfRange {
            pledge: p.pledge.to_string(),
            value: p.value_per_lesson_fen.0,
            max: PRICE_PER_LESSON_FEN_MAX,
        });
    }
    let lessons_bad = |field, value, min, max| MatchError::PledgeLessonsOutOfRange {
        pledge: p.pledge.to_string(),
        field,
        value,
        min,
        max,
    };
    if !(1..=LESSONS_PER_SEAT_MAX).contains(&p.lessons_per_seat) {
        return Err(lessons_bad(
            "lessons_per_seat",
            p.lessons_per_seat,
            1,
            LESSONS_PER_SEAT_MAX,
        ));
    }
    if p.available_lessons.0 > PLEDGE_LESSONS_MAX {
        return Err(lessons_bad(
            "available_lessons",
            p.available_lessons.0,
            0,
            PLEDGE_LESSONS_MAX,
        ));
    }
    Ok(())
}

/// Canonical orders: claims by (closure, id), pledges by id. Duplicates are errors,
/// found next to each other once sorted.
#[allow(clippy::type_complexity)]
fn canonical_order<'a>(
    claims: &'a [ClaimInput],
    pledges: &'a [PledgeInput],
) -> Result<(Vec<&'a ClaimInput>, Vec<&'a PledgeInput>), MatchError> {
    let mut cl: Vec<&ClaimInput> = claims.iter().collect();
    cl.par_sort_unstable_by(|a, b| (a.closed_at, &a.claim).cmp(&(b.closed_at, &b.claim)));
    let mut by_id: Vec<&Id> = cl.iter().map(|c| &c.claim).collect();
    by_id.par_sort_unstable();
    if let Some(w) = by_id.windows(2).find(|w| w[0] == w[1]) {
        return Err(MatchError::DuplicateClaim {
            claim: w[0].to_string(),
        });
    }
    drop(by_id);
    let mut pl: Vec<&PledgeInput> = pledges.iter().collect();
    pl.sort_unstable_by(|a, b| a.pledge.cmp(&b.pledge));
    if let Some(w) = pl.windows(2).find(|w| w[0].pledge == w[1].pledge) {
        return Err(MatchError::DuplicatePledge {
            pledge: w[0].pledge.to_string(),
        });
    }
    Ok((cl, pl))
}

/// "the pledge approved, valid on the match date, its institution not banned", with a
/// lesson left. The cap counts eligible pledges only: pledges nobody approved (or
/// banned, expired, used up) cost a signature each to make, and must not stop a run.
fn eligible_pledges(pl: &mut Vec<&PledgeInput>, params: &MatchParams) -> Result<(), MatchError> {
    let t = params.at_micros;
    pl.retain(|p| {
        p.approved
            && !p.banned
            && (p.valid_from_micros..p.valid_until_micros).contains(&t)
            && p.available_lessons.0 > 0
    });
    if pl.len() > MATCH_PLEDGES_MAX {
        return Err(MatchError::TooManyPledges {
            count: pl.len(),
            max: MATCH_PLEDGES_MAX,
        });
    }
    Ok(())
}

/// Districts (claims' and pledges') as bits of a u64, subjects as small numbers. Interned
/// in canonical order (pledges first, then claims) so that the numbering, too, is
/// independent of input order.
#[derive(Default)]
struct Names<'a> {
    districts: HashMap<&'a str, u8>,
    subjects: HashMap<&'a str, u32>,
}

impl<'a> Names<'a> {
    fn district(&mut self, d: &'a Id) -> Result<u8, MatchError> {
        let n = self.districts.len();
        match self.districts.get(d.as_str()) {
            Some(&i) => Ok(i),
            None if n < MATCH_DISTRICTS_MAX => {
                let i = u8::try_from(n).map_err(|_| MatchError::Overflow { what: "district" })?;
                self.districts.insert(d.as_str(), i);
                Ok(i)
            }
            None => Err(MatchError::TooManyDistricts {
                count: n + 1,
                max: MATCH_DISTRICTS_MAX,
            }),
        }
    }

    fn subject(&mut self, s: &'a Id) -> Result<u32, MatchError> {
        let n = u32::try_from(self.subjects.len())
            .map_err(|_| MatchError::Overflow { what: "subjects" })?;
        Ok(*self.subjects.entry(s.as_str()).or_insert(n))
    }
}

/// Claims grouped into classes by [`ClassKey`], classes numbered in the order of their
/// first claim; returns the classes and each claim's class.
fn group_into_classes<'a>(
    cl: &[&'a ClaimInput],
    pl: &[&PledgeInput],
    names: &mut Names<'a>,
) -> Result<(Vec<Class>, Vec<u32>), MatchError> {
    let pledge_index: HashMap<&str, u32> = pl
        .iter()
        .enumerate()
        .map(|(j, p)| (p.pledge.as_str(), j as u32))
        .collect();
    let mut class_index: HashMap<ClassKey, u32> = HashMap::new();
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of: Vec<u32> = Vec::with_capacity(cl.len());
    for (i, c) in cl.iter().copied().enumerate() {
        let key = class_key(c, &pledge_index, names)?;
        let next =
            u32::try_from(classes.len()).map_err(|_| MatchError::Overflow { what: "classes" })?;
        let k = *class_index.entry(key.clone()).or_insert(next);
        if k == next {
            let (subjects, grade, own, mask, online, requests) = key;
            classes.push(Class {
                subjects,
                requests,
                grade,
                own,
                mask,
                online,
                claims: Vec::new(),
                pledges: Vec::new(),
            });
        }
        let idx = u32::try_from(i).map_err(|_| MatchError::Overflow { what: "claims" })?;
        classes[k as usize].claims.push(idx);
        class_of.push(k);
    }
    Ok((classes, class_of))
}

/// A claim's class key: its preferences if it has them, else its own subject, districts
/// and online acceptance.
fn class_key<'a>(
    c: &'a ClaimInput,
    pledge_index: &HashMap<&str, u32>,
    names: &mut Names<'a>,
) -> Result<ClassKey, MatchError> {
    let own = names.district(&c.district)?;
    let (subject_ids, online, others, requested) = match &c.preferences {
        Some(p) => (
            &p.subjects[..],
            p.accepts_online,
            &p.accepted_districts[..],
            &p.requests[..],
        ),
        None => (
            std::slice::from_ref(&c.subject),
            c.accepts_online,
            &c.accepted_districts[..],
            &[][..],
        ),
    };
    let mut mask = 1u64 << own;
    for d in others {
        mask |= 1u64 << names.district(d)?;
    }
    // A subject no pledge offers still forms classes (they get nothing).
    let mut subjects_k: Vec<u32> = Vec::with_capacity(subject_ids.len());
    for s in subject_ids {
        let k = names.subject(s)?;
        if !subjects_k.contains(&k) {
            subjects_k.push(k);
        }
    }
    // Requests for pledges not eligible now are not errors: the course may have
    // been withdrawn or used up since the family asked.
    let mut requests: Vec<u32> = Vec::with_capacity(requested.len());
    for r in requested {
        if let Some(&j) = pledge_index.get(r.as_str()) {
            if !requests.contains(&j) {
                requests.push(j);
            }
        }
    }
    // Checked by `validate`: 1..=12.
    let grade = u8::try_from(c.grade).map_err(|_| MatchError::Overflow { what: "grade" })?;
    Ok((subjects_k, grade, own, mask, online, requests))
}

/// Pledges by (subject, grade), to find each class's compatible pledges.
fn by_subject_grade(
    pl: &[&PledgeInput],
    pledge_subject: &[u32],
) -> Result<HashMap<(u32, u8), Vec<u32>>, MatchError> {
    let mut by_subject_grade: HashMap<(u32, u8), Vec<u32>> = HashMap::new();
    for (j, p) in pl.iter().enumerate() {
        for g in p.grade_min..=p.grade_max {
            let g = u8::try_from(g).map_err(|_| MatchError::Overflow { what: "grade" })?;
            let j = u32::try_from(j).map_err(|_| MatchError::Overflow { what: "pledges" })?;
            by_subject_grade
                .entry((pledge_subject[j as usize], g))
                .or_default()
                .push(j);
        }
    }
    Ok(by_subject_grade)
}

/// What makes claims interchangeable: accepted subjects (ranked), grade, own district,
/// accepted districts, online acceptance, requests.
type ClassKey = (Vec<u32>, u8, u8, u64, bool, Vec<u32>);

/// Fill `class.pledges`: for each accepted subject, the pledges of the class's grade
/// taught in an accepted place, or requested; ordered dearest first, then subject rank,
/// then locality rank, then pledge order. Exactly the test of `allocation_made`
/// (`Claim::accepts`), given that only eligible pledges are listed.
fn compatible_pledges(
    class: &mut Class,
    cl: &[&ClaimInput],
    by_subject_grade: &HashMap<(u32, u8), Vec<u32>>,
    pledge_district: &[Option<u8>],
    online_pledge: &[bool],
    value: &[u64],
) {
    let max_u = class
        .claims
        .iter()
        .map(|&i| cl[i as usize].unreserved_fen.0)
        .max()
        .unwrap_or(0);
    // (pledge, locality rank, subject rank)
    let mut found: Vec<(u32, u8, usize)> = Vec::new();
    for (srank, &subject) in class.subjects.iter().enumerate() {
        let Some(cands) = by_subject_grade.get(&(subject, class.grade)) else {
            continue;
        };
        for &j in cands {
            // "the pledge's district among the districts the student accepts, or the
            // pledge is online and the student accepts online, or the course requested"
            let rank = match pledge_district[j as usize] {
                Some(d) if d == class.own => Some(0),
                Some(d) if class.mask & (1u64 << d) != 0 => Some(1),
                Some(_) => None,
                None if online_pledge[j as usize] && class.online => Some(RANK_ONLINE),
                None => None,
            };
            let rank = match rank {
                Some(r) => r,
                None if class.requests.contains(&j) => {
                    if pledge_district[j as usize].is_some() {
                        1
                    } else {
                        RANK_ONLINE
                    }
                }
                None => continue,
            };
            // "the claim's unreserved value buys at least one lesson of the pledge"
            if max_u >= value[j as usize] {
                found.push((j, rank, srank));
            }
        }
    }
    found.sort_unstable_by(|a, b| {
        (value[b.0 as usize], a.2, a.1, a.0).cmp(&(value[a.0 as usize], b.2, b.1, b.0))
    });
    // Requests the class cannot use (wrong grade or subject, too dear) are dropped.
    class.requests.retain(|j| found.iter().any(|f| f.0 == *j));
    class.pledges = found.into_iter().map(|(j, r, _)| (j, r)).collect();
}

/// Record `k` lessons of pledge `p` for claim `c` in `state`.
pub(super) fn apply(
    problem: &Problem<'_>,
    state: &mut State,
    c: u32,
    p: u32,
    k: u64,
) -> Result<(), MatchError> {
    let v = problem.value[p as usize]
        .checked_mul(k)
        .ok_or(MatchError::Overflow { what: "value" })?;
    let u = &mut state.unreserved[c as usize];
    *u = u.checked_sub(v).ok_or(MatchError::Overflow {
        what: "claim unreserved",
    })?;
    let a = &mut state.available[p as usize];
    *a = a.checked_sub(k).ok_or(MatchError::Overflow {
        what: "pledge available",
    })?;
    let k32 = u32::try_from(k).map_err(|_| MatchError::Overflow { what: "lessons" })?;
    let held = &mut state.held[c as usize];
    match held.iter_mut().find(|x| x.0 == p) {
        Some(e) => e.1 += k32,
        None => held.push((p, k32)),
    }
    Ok(())
}

pub(super) fn value_of(problem: &Problem<'_>, state: &State) -> Result<u64, MatchError> {
    let mut total: u64 = 0;
    for (c, u) in state.unreserved.iter().enumerate() {
        let spent = problem.claims[c].unreserved_fen.0 - u;
        total = total
            .checked_add(spent)
            .ok_or(MatchError::Overflow { what: "matched" })?;
    }
    Ok(total)
}
