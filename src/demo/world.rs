//! The synthetic city: who takes part, what each claim and pledge says, and every key —
//! all a pure function of the seed and the scale, so that a run can be replayed and a
//! million claims need not be held in memory (each is regenerated from its number).
//!
//! Plausible, and no personal data: Shanghai's 16 districts, the default genesis's
//! subjects (school subjects, arts, sports, technology), grades 1–12, at most 60 lessons
//! per claim (the prepayment cap), 100–600 yuan per lesson, an evidence digest that is
//! the BLAKE3 of a synthetic contract text. Parties are refs: `stu-000123`,
//! `inst-0042`, `assoc-01`.
//!
//! ```
//! use lesson_ledger::demo::{world::World, Scale};
//! let w = World::new(7, Scale::Tiny, 1_700_000_000_000_000);
//! let c = w.claim(3);
//! assert_eq!(c.student, "stu-000003");
//! assert!((1..=60).contains(&c.lessons));
//! assert_eq!(c, World::new(7, Scale::Tiny, 1_700_000_000_000_000).claim(3));
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{DemoError, Scale};
use crate::ledger::defaults::{SHANGHAI_DISTRICTS, SUBJECTS};
use crate::ledger::limits::{LESSONS_PER_SEAT_MAX, PLEDGE_SEATS_MAX};
use crate::log::note::{KeyName, NoteSigner};

/// The prepayment cap: lessons one claim may hold.
pub const CLAIM_LESSONS_CAP: u64 = 60;
/// Price per lesson of a claim or pledge, in fen: 100 to 600 yuan.
pub const PRICE_FEN_MIN: u64 = 10_000;
/// See [`PRICE_FEN_MIN`].
pub const PRICE_FEN_MAX: u64 = 60_000;
/// The pool Shanghai reached: over 1.4 billion yuan (the demo aims a little above).
pub const POOL_TARGET_FEN: u64 = 145_000_000_000;
/// What the pool must exceed at `small` and `city` scale.
pub const POOL_FLOOR_FEN: u64 = 140_000_000_000;

/// Microseconds in a second.
const SECOND_MICROS: u64 = 1_000_000;
/// Microseconds in an hour.
const HOUR_MICROS: u64 = 3_600 * SECOND_MICROS;
/// Regular pledges are valid for a year from their offer.
const PLEDGE_VALIDITY_MICROS: u64 = 365 * 24 * HOUR_MICROS;

/// The wall clock in µs since the Unix epoch (0 before 1970).
#[must_use]
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The sizes of one scale.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Students; each holds one claim.
    pub students: u64,
    /// Closed institutions whose students hold the claims.
    pub closed: u64,
    /// Donor institutions.
    pub donors: u64,
    /// Consumer associations.
    pub associations: u64,
    /// Pledges offered.
    pub pledges: u64,
    /// Pledged value to reach, in fen (`None`: whatever the seats give).
    pub pool_target_fen: Option<u64>,
    /// Most lessons delivered per allocation (`None`: up to all of them).
    pub lessons_per_allocation_max: Option<u64>,
    /// The ledger's day (the genesis `day_micros`): short, so that the national
    /// 15-day confirmation window and the allocations' validity pass in wall time.
    pub day_micros: u64,
    /// The genesis `allocation_validity_days`: long enough for every lesson of the
    /// story to be delivered, short enough to watch allocations expire.
    pub allocation_validity_days: u64,
}

impl Params {
    /// The sizes of `scale`.
    #[must_use]
    pub fn of(scale: Scale) -> Params {
        match scale {
            Scale::Tiny => Params {
                students: 30,
                closed: 3,
                donors: 6,
                associations: 2,
                pledges: 40,
                pool_target_fen: None,
                lessons_per_allocation_max: Some(12),
                day_micros: SECOND_MICROS,
                // Expiry just after the 15-day window: the test waits once.
                allocation_validity_days: 16,
            },
            Scale::Small => Params {
                students: 2_000,
                closed: 40,
                donors: 43,
                associations: 4,
                pledges: 240,
                pool_target_fen: Some(POOL_TARGET_FEN),
                lessons_per_allocation_max: None,
                day_micros: SECOND_MICROS,
                // ~50,000 lessons go in well before 40 days are over (about 10 s on a
                // quiet machine, 25 s on a busy one).
                allocation_validity_days: 40,
            },
            Scale::City => Params {
                students: 1_000_000,
                closed: 2_000,
                donors: 43,
                // A genesis declares at most 7 associations (each co-signs it).
                associations: 7,
                pledges: 2_000,
                pool_target_fen: Some(POOL_TARGET_FEN),
                lessons_per_allocation_max: Some(2),
                // About a million lessons take seven to ten minutes after the match:
                // a 40 s day makes the month 20 minutes (the lessons are in with ten to
                // spare) and the window 10, so that step 4c waits as little as the
                // story allows (issue 15; it was a 60 s day, 25 minutes of waiting).
                day_micros: 40 * SECOND_MICROS,
                allocation_validity_days: 30,
            },
        }
    }
}

/// A claim as the closed institution's records would give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSpec {
    /// The student number (see [`World::claim`]).
    pub number: u64,
    /// The claim's id.
    pub claim: String,
    /// The student's pseudonymous id.
    pub student: String,
    /// Id of the closed institution.
    pub institution: String,
    /// Lessons prepaid and not taken.
    pub lessons: u64,
    /// What one lesson cost, in fen.
    pub price_fen: u64,
    /// The subject.
    pub subject: &'static str,
    /// The student's grade, 1 to 12.
    pub grade: u64,
    /// The student's district.
    pub district: &'static str,
    /// Whether the claim's own terms accept online courses.
    pub accepts_online: bool,
    /// Districts accepted besides its own.
    pub accepted_districts: Vec<&'static str>,
    /// BLAKE3 of the evidence the association saw, 64 lowercase hex characters.
    pub evidence_digest: String,
}

impl ClaimSpec {
    /// `lessons × price`, in fen (cannot overflow: 60 × 60,000).
    #[must_use]
    pub fn value_fen(&self) -> u64 {
        self.lessons * self.price_fen
    }

    /// The `claim_recorded` payload.
    #[must_use]
    pub fn payload(&self) -> Value {
        json!({
            "kind": "claim_recorded", "id": format!("claim_recorded.{}", self.claim),
            "claim": self.claim, "student": self.student, "institution": self.institution,
            "lessons": self.lessons, "price_per_lesson_fen": self.price_fen,
            "subject": self.subject, "grade": self.grade, "district": self.district,
            "evidence_digest": self.evidence_digest, "accepts_online": self.accepts_online,
            "accepted_districts": self.accepted_districts,
        })
    }
}

/// A course a donor puts into the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PledgeSpec {
    /// The pledge's id.
    pub pledge: String,
    /// Donor number (see [`World::donor`]).
    pub donor: u64,
    /// The subject taught.
    pub subject: &'static str,
    /// Lowest grade taught, 1 to 12.
    pub grade_min: u64,
    /// Highest grade taught, 1 to 12.
    pub grade_max: u64,
    /// `None`: online.
    pub district: Option<&'static str>,
    /// Seats offered.
    pub seats: u64,
    /// Lessons one seat holds.
    pub lessons_per_seat: u64,
    /// Value of one lesson, in fen.
    pub value_fen: u64,
    /// Start of validity, µs of ledger time since the epoch.
    pub valid_from_micros: u64,
    /// End of validity (excluded), µs of ledger time since the epoch.
    pub valid_until_micros: u64,
}

impl PledgeSpec {
    /// Value of the whole pledge in fen (bounded by the ledger's limits).
    #[must_use]
    pub fn value_total_fen(&self) -> u64 {
        self.seats
            .saturating_mul(self.lessons_per_seat)
            .saturating_mul(self.value_fen)
    }

    /// The `pledge_offered` payload of donor `institution`.
    #[must_use]
    pub fn payload(&self, institution: &str) -> Value {
        let mut p = json!({
            "kind": "pledge_offered", "id": format!("pledge_offered.{}", self.pledge),
            "pledge": self.pledge, "institution": institution, "subject": self.subject,
            "grade_min": self.grade_min, "grade_max": self.grade_max,
            "seats": self.seats, "lessons_per_seat": self.lessons_per_seat,
            "value_per_lesson_fen": self.value_fen,
            "valid_from_micros": self.valid_from_micros,
            "valid_until_micros": self.valid_until_micros,
        });
        if let Some(map) = p.as_object_mut() {
            match self.district {
                Some(d) => map.insert("district".into(), d.into()),
                None => map.insert("online".into(), true.into()),
            };
        }
        p
    }
}

/// The seeded world.
#[derive(Debug, Clone)]
pub struct World {
    seed: u64,
    scale: Scale,
    params: Params,
    /// When the story starts (µs): pledge windows are set from it.
    start_micros: u64,
}

impl World {
    /// The world of `seed` at `scale`, its story starting at `start_micros` (µs since the epoch).
    #[must_use]
    pub fn new(seed: u64, scale: Scale, start_micros: u64) -> World {
        World {
            seed,
            scale,
            params: Params::of(scale),
            start_micros,
        }
    }

    /// The sizes of its scale.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The seed every choice derives from.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The checkpoint origin of the demo ledger.
    #[must_use]
    pub fn origin(&self) -> &'static str {
        match self.scale {
            Scale::Tiny => "demo.lesson-ledger.example/shanghai-tiny",
            Scale::Small => "demo.lesson-ledger.example/shanghai-small",
            Scale::City => "demo.lesson-ledger.example/shanghai-city",
        }
    }

    /// A generator for one named purpose: the same seed and purpose give the same
    /// choices, whatever else the run did.
    #[must_use]
    pub fn rng(&self, purpose: &str) -> StdRng {
        let mut h = blake3::Hasher::new();
        h.update(b"lesson-ledger demo rng\n");
        h.update(&self.seed.to_be_bytes());
        h.update(purpose.as_bytes());
        StdRng::from_seed(*h.finalize().as_bytes())
    }

    /// The party's key, derived from the seed and its ref.
    ///
    /// # Errors
    /// [`DemoError::Note`] for a ref that is not a valid key name (never for refs made here).
    pub fn key(&self, party: &str) -> Result<Arc<NoteSigner>, DemoError> {
        let mut h = blake3::Hasher::new();
        h.update(b"lesson-ledger demo key\n");
        h.update(&self.seed.to_be_bytes());
        h.update(party.as_bytes());
        let key = SigningKey::from_bytes(h.finalize().as_bytes());
        Ok(Arc::new(NoteSigner::new(KeyName::new(party)?, key)))
    }

    /// Student number `n`.
    #[must_use]
    pub fn student(n: u64) -> String {
        format!("stu-{n:06}")
    }

    /// Donor institution number `d` (`inst-0001`, …).
    #[must_use]
    pub fn donor(d: u64) -> String {
        format!("inst-{:04}", d + 1)
    }

    /// Closed institution number `c` (numbered after the donors).
    #[must_use]
    pub fn closed(&self, c: u64) -> String {
        format!("inst-{:04}", self.params.donors + c + 1)
    }

    /// The donor that will be black-listed (numbered after everyone else).
    #[must_use]
    pub fn banned(&self) -> String {
        format!("inst-{:04}", self.params.donors + self.params.closed + 1)
    }

    /// Consumer association number `a`.
    #[must_use]
    pub fn association(a: u64) -> String {
        format!("assoc-{:02}", a + 1)
    }

    /// The closed institution that owes claim `n`.
    #[must_use]
    pub fn institution_of(&self, n: u64) -> u64 {
        n % self.params.closed.max(1)
    }

    /// Claim number `n` (student `n`'s claim), regenerated from the seed.
    #[must_use]
    pub fn claim(&self, n: u64) -> ClaimSpec {
        let mut rng = self.rng(&format!("claim {n}"));
        let claim = format!("c-{n:07}");
        let student = World::student(n);
        let institution = self.closed(self.institution_of(n));
        let lessons = rng.gen_range(1..=CLAIM_LESSONS_CAP);
        // Prices in whole tens of yuan, as price lists are.
        let price_fen = rng.gen_range(PRICE_FEN_MIN / 1_000..=PRICE_FEN_MAX / 1_000) * 1_000;
        let subject = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
        let grade = rng.gen_range(1..=12);
        let district = SHANGHAI_DISTRICTS[rng.gen_range(0..SHANGHAI_DISTRICTS.len())];
        let accepts_online = rng.gen_bool(0.8);
        let mut accepted_districts = Vec::new();
        for _ in 0..rng.gen_range(0..=2) {
            let d = SHANGHAI_DISTRICTS[rng.gen_range(0..SHANGHAI_DISTRICTS.len())];
            if d != district && !accepted_districts.contains(&d) {
                accepted_districts.push(d);
            }
        }
        let contract = format!(
            "Synthetic prepaid tutoring contract {claim}: institution {institution}, \
             student {student}, {lessons} lessons of {subject} for grade {grade} at \
             {price_fen} fen per lesson, district {district}. Prepaid in full; not taught."
        );
        ClaimSpec {
            number: n,
            evidence_digest: blake3::hash(contract.as_bytes()).to_hex().to_string(),
            claim,
            student,
            institution,
            lessons,
            price_fen,
            subject,
            grade,
            district,
            accepts_online,
            accepted_districts,
        }
    }

    /// The regular pledges: every subject gets its share, half online; at `small` and
    /// `city` the seats are sized so that the pool passes 1.4 billion yuan (the count
    /// stays the same, so a bigger pool costs no more entries).
    #[must_use]
    pub fn pledges(&self) -> Vec<PledgeSpec> {
        const BANDS: [(u64, u64); 6] = [(1, 6), (4, 9), (7, 12), (1, 12), (1, 9), (4, 12)];
        let mut rng = self.rng("pledges");
        let n = self.params.pledges;
        let per_pledge = self.params.pool_target_fen.map(|t| t / n.max(1));
        let mut out: Vec<PledgeSpec> = (0..n)
            .map(|i| {
                let (grade_min, grade_max) = BANDS[rng.gen_range(0..BANDS.len())];
                let online = rng.gen_bool(0.5);
                let district = SHANGHAI_DISTRICTS[rng.gen_range(0..SHANGHAI_DISTRICTS.len())];
                let value_fen =
                    rng.gen_range(PRICE_FEN_MIN / 1_000..=PRICE_FEN_MAX / 1_000) * 1_000;
                let lessons_per_seat = rng.gen_range(10..=CLAIM_LESSONS_CAP);
                let seats = match per_pledge {
                    // Sized to the target, ±20%.
                    Some(v) => {
                        let base = v / (value_fen * lessons_per_seat);
                        (base * rng.gen_range(80..=120) / 100).clamp(1, PLEDGE_SEATS_MAX)
                    }
                    None => rng.gen_range(2..=6),
                };
                PledgeSpec {
                    pledge: format!("p-{:05}", i + 1),
                    donor: i % self.params.donors.max(1),
                    subject: SUBJECTS[(i as usize) % SUBJECTS.len()],
                    grade_min,
                    grade_max,
                    district: (!online).then_some(district),
                    seats,
                    lessons_per_seat,
                    value_fen,
                    valid_from_micros: self.start_micros.saturating_sub(HOUR_MICROS),
                    valid_until_micros: self.start_micros.saturating_add(PLEDGE_VALIDITY_MICROS),
                }
            })
            .collect();
        // Top up, seat by seat round the pledges, until the target is passed.
        if let Some(target) = self.params.pool_target_fen {
            let mut total: u64 = out.iter().map(PledgeSpec::value_total_fen).sum();
            let mut i = 0;
            while total < target && !out.is_empty() {
                let len = out.len();
                let p = &mut out[i % len];
                if p.seats < PLEDGE_SEATS_MAX {
                    p.seats += 1;
                    total += p.lessons_per_seat * p.value_fen;
                }
                i += 1;
                if i > len * PLEDGE_SEATS_MAX as usize {
                    break;
                }
            }
        }
        debug_assert!(out
            .iter()
            .all(|p| p.lessons_per_seat <= LESSONS_PER_SEAT_MAX));
        out
    }

    /// The pledge the banned donor tries to offer after its ban.
    #[must_use]
    pub fn banned_pledge(&self) -> PledgeSpec {
        PledgeSpec {
            pledge: "p-banned-01".into(),
            donor: 0,
            subject: SUBJECTS[0],
            grade_min: 1,
            grade_max: 12,
            district: None,
            seats: 10,
            lessons_per_seat: 20,
            value_fen: 20_000,
            valid_from_micros: self.start_micros.saturating_sub(HOUR_MICROS),
            valid_until_micros: self.start_micros.saturating_add(PLEDGE_VALIDITY_MICROS),
        }
    }
}
