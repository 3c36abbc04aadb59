//! Step 3b (issue 18): families choose what they redeem — and what choosing is worth.
//!
//! Seven families in ten sign a `claim_preferences_set` (the student's key alone): their
//! own subject first, then arts, sports and technology courses — each group accepted by
//! about half of them, one or two subjects of it — in their own district (most) or the
//! districts their claim already accepted, online as their claim said. One in ten of
//! those asks for a specific pledged course it may be given (subject accepted, grade in
//! band, taught in an accepted place). One student tries to choose for another's claim,
//! and is refused (`not_authorized`).
//!
//! The figures: the matcher run in this process on the very same claims and pledges
//! (regenerated from the seed, as the ledger holds them before the first match) without
//! and with the families' choices — value matched, the bound, students served. The
//! recorded run (`POST /v1/match`) is the one with the choices.

use rand::Rng;
use serde_json::json;

use super::feed::{Expect, Feed};
use super::story::yuan;
use super::world::{ClaimSpec, PledgeSpec, World};
use super::DemoError;
use crate::ledger::limits::PREFERENCE_SUBJECTS_MAX;
use crate::ledger::objects::ClaimPreferences;
use crate::ledger::units::{Fen, Id, Lessons};
use crate::matching::{match_claims, ClaimInput, MatchParams, MatchReport, PledgeInput};

/// Subjects outside school the families consider, by group: arts, sports, technology.
const GROUPS: [&[&str]; 3] = [
    &["art", "music", "piano", "dance", "calligraphy"],
    &["swimming", "basketball", "football", "chess"],
    &["programming", "robotics", "science"],
];

/// What one family chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Accepted subjects, most wanted first.
    pub subjects: Vec<&'static str>,
    /// Whether online courses are accepted.
    pub accepts_online: bool,
    /// Districts accepted besides the claim's own.
    pub accepted_districts: Vec<&'static str>,
    /// Pledges requested by id, most wanted first.
    pub requests: Vec<String>,
}

/// One matcher run's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Side {
    /// Value matched, in fen.
    pub matched_fen: u64,
    /// The relaxation's bound, in fen: no matching can exceed it.
    pub bound_fen: u64,
    /// Distinct students with at least one allocation.
    pub students_served: u64,
    /// Claims with at least one allocation.
    pub claims_served: u64,
}

impl From<&MatchReport> for Side {
    fn from(r: &MatchReport) -> Side {
        Side {
            matched_fen: r.matched_fen.0,
            bound_fen: r.bound_fen.0,
            students_served: r.students_served,
            claims_served: r.claims_served,
        }
    }
}

/// What choosing was worth, on the same data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Families that set preferences, and those that requested a course.
    pub families: u64,
    /// Families that requested a course by id.
    pub requesting: u64,
    /// The matcher's figures with every preference ignored.
    pub without: Side,
    /// The matcher's figures with the preferences.
    pub with: Side,
}

/// Family `claim`'s choice, or `None` if it keeps its claim as recorded.
#[must_use]
pub fn choice_of(world: &World, claim: &ClaimSpec, pledges: &[PledgeSpec]) -> Option<Choice> {
    let mut rng = world.rng(&format!("preferences {}", claim.number));
    if !rng.gen_bool(0.7) {
        return None;
    }
    let mut subjects = vec![claim.subject];
    for group in GROUPS {
        if rng.gen_bool(0.5) {
            for _ in 0..rng.gen_range(1..=2) {
                let s = group[rng.gen_range(0..group.len())];
                if !subjects.contains(&s) && subjects.len() < PREFERENCE_SUBJECTS_MAX {
                    subjects.push(s);
                }
            }
        }
    }
    let accepted_districts = if rng.gen_bool(0.7) {
        Vec::new()
    } else {
        claim.accepted_districts.clone()
    };
    let mut requests = Vec::new();
    if rng.gen_bool(0.1) {
        let fits: Vec<&PledgeSpec> = pledges
            .iter()
            .filter(|p| {
                subjects.contains(&p.subject)
                    && (p.grade_min..=p.grade_max).contains(&claim.grade)
                    && match p.district {
                        None => claim.accepts_online,
                        Some(d) => d == claim.district || accepted_districts.contains(&d),
                    }
            })
            .collect();
        if !fits.is_empty() {
            requests.push(fits[rng.gen_range(0..fits.len())].pledge.clone());
        }
    }
    Some(Choice {
        subjects,
        accepts_online: claim.accepts_online,
        accepted_districts,
        requests,
    })
}

/// Step 3b: the families' entries, and the figures without and with them.
///
/// # Errors
/// An unexpected answer; the matcher refusing the demo's data (a bug); faults.
pub fn run(feed: &mut Feed, world: &World) -> Result<Figures, DemoError> {
    let p = world.params();
    let pledges = world.pledges();
    let mut figures = Figures::default();
    let mut without = Vec::with_capacity(usize::try_from(p.students).unwrap_or(0));
    let mut with = Vec::with_capacity(without.capacity());
    feed.progress("families choosing", p.students);
    for n in 0..p.students {
        let claim = world.claim(n);
        let choice = choice_of(world, &claim, &pledges);
        let input = claim_input(world, &claim, None)?;
        if let Some(c) = &choice {
            figures.families += 1;
            figures.requesting += u64::from(!c.requests.is_empty());
            feed.push(
                &json!({"kind": "claim_preferences_set",
                        "id": format!("claim_preferences_set.{}", claim.claim),
                        "claim": claim.claim, "subjects": c.subjects,
                        "accepts_online": c.accepts_online,
                        "accepted_districts": c.accepted_districts, "requests": c.requests}),
                vec![world.key(&claim.student)?],
                Expect::Accepted,
            )?;
            with.push(claim_input(world, &claim, choice.as_ref())?);
        } else {
            with.push(input.clone());
        }
        without.push(input);
    }
    if p.students >= 2 {
        // A student choosing for another family's claim: refused, changing nothing.
        let (mine, theirs) = (world.claim(0), world.claim(1));
        feed.push(
            &json!({"kind": "claim_preferences_set", "id": "claim_preferences_set.not-mine",
                    "claim": theirs.claim, "subjects": ["art"], "accepts_online": true,
                    "accepted_districts": [], "requests": []}),
            vec![world.key(&mine.student)?],
            Expect::Refused("not_authorized"),
        )?;
    }
    feed.flush()?;
    feed.finish_progress();
    let pledge_inputs: Vec<PledgeInput> =
        pledges.iter().map(pledge_input).collect::<Result<_, _>>()?;
    let params = MatchParams::at(super::world::now_micros());
    let matched = |claims: &[ClaimInput]| -> Result<Side, DemoError> {
        match_claims(claims, &pledge_inputs, &params)
            .map(|m| Side::from(&m.report))
            .map_err(DemoError::Matcher)
    };
    figures.without = matched(&without)?;
    figures.with = matched(&with)?;
    println!(
        "{} families chose what they redeem ({} asked for a course); on the same claims and pledges the matcher matches {} yuan without their choices and {} yuan with them, serving {} and {} students",
        figures.families,
        figures.requesting,
        yuan(figures.without.matched_fen),
        yuan(figures.with.matched_fen),
        figures.without.students_served,
        figures.with.students_served,
    );
    Ok(figures)
}

fn id(what: &'static str, value: &str) -> Result<Id, DemoError> {
    Id::new(what, value).map_err(|e| DemoError::Setup(format!("{what} {value}: {e}")))
}

fn ids(what: &'static str, values: &[&str]) -> Result<Vec<Id>, DemoError> {
    values.iter().map(|v| id(what, v)).collect()
}

/// The matcher's view of claim `c` before any match: all its value unreserved, its
/// closure order that of its institution's `institution_closed` entry.
fn claim_input(
    world: &World,
    c: &ClaimSpec,
    choice: Option<&Choice>,
) -> Result<ClaimInput, DemoError> {
    let preferences = match choice {
        None => None,
        Some(ch) => Some(ClaimPreferences {
            subjects: ids("subject", &ch.subjects)?,
            accepts_online: ch.accepts_online,
            accepted_districts: ids("district", &ch.accepted_districts)?,
            requests: ch
                .requests
                .iter()
                .map(|r| id("pledge", r))
                .collect::<Result<_, _>>()?,
            set_at: 0,
        }),
    };
    Ok(ClaimInput {
        claim: id("claim", &c.claim)?,
        student: id("student", &c.student)?,
        closed_at: world.institution_of(c.number) + 1,
        subject: id("subject", c.subject)?,
        grade: c.grade,
        district: id("district", c.district)?,
        accepts_online: c.accepts_online,
        accepted_districts: ids("district", &c.accepted_districts)?,
        unreserved_fen: Fen(c.value_fen()),
        preferences,
    })
}

fn pledge_input(p: &PledgeSpec) -> Result<PledgeInput, DemoError> {
    Ok(PledgeInput {
        pledge: id("pledge", &p.pledge)?,
        institution: id("institution", &World::donor(p.donor))?,
        subject: id("subject", p.subject)?,
        grade_min: p.grade_min,
        grade_max: p.grade_max,
        district: p.district.map(|d| id("district", d)).transpose()?,
        online: p.district.is_none(),
        available_lessons: Lessons(p.seats.saturating_mul(p.lessons_per_seat)),
        lessons_per_seat: p.lessons_per_seat,
        value_per_lesson_fen: Fen(p.value_fen),
        valid_from_micros: p.valid_from_micros,
        valid_until_micros: p.valid_until_micros,
        approved: true,
        banned: false,
    })
}
