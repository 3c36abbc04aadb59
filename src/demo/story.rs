//! Steps 1–3 of the story: the ledger and its parties, the closures and the claims, the
//! pledges (with the black-listed donor whose later pledge is refused).
//!
//! Each step drafts entries into a [`Feed`], which signs, submits and checks them. Who
//! signs what is the ledger's rule, quoted where it matters.
//!
//! ```no_run
//! use lesson_ledger::demo::{create, feed::Feed, story, world::World, HttpLedger, Scale};
//! let world = World::new(1, Scale::Tiny, lesson_ledger::demo::world::now_micros());
//! let created = create::ledger(std::path::Path::new("/tmp/l"), &world)?;
//! // ... served at http://127.0.0.1:8080 (see `lesson_ledger::http::Server`) ...
//! let ledger = HttpLedger::new("http://127.0.0.1:8080", &created.operator.vkey())?;
//! let cast = story::Cast::new(&world, created.operator)?;
//! let mut feed = Feed::new(ledger, world.origin(), 1);
//! story::setup(&mut feed, &world, &cast)?;
//! # Ok::<(), lesson_ledger::demo::DemoError>(())
//! ```

use std::sync::Arc;

use serde_json::json;

use super::feed::{Expect, Feed};
use super::world::{World, POOL_FLOOR_FEN};
use super::DemoError;
use crate::log::note::NoteSigner;

/// The parties whose keys the story keeps at hand (students' keys are derived when
/// needed, so a million of them are never held at once).
pub struct Cast {
    /// The ledger's operator.
    pub operator: Arc<NoteSigner>,
    /// The consumer associations, in the genesis's order.
    pub associations: Vec<Arc<NoteSigner>>,
    /// The donor institutions.
    pub donors: Vec<Arc<NoteSigner>>,
    /// The closed institutions whose students hold claims.
    pub closed: Vec<Arc<NoteSigner>>,
    /// The institution the story black-lists.
    pub banned: Arc<NoteSigner>,
}

impl Cast {
    /// Derives every institution's and association's key from the seed.
    ///
    /// # Errors
    /// [`DemoError::Note`] (never for the refs the world makes).
    pub fn new(world: &World, operator: NoteSigner) -> Result<Cast, DemoError> {
        let p = world.params();
        Ok(Cast {
            operator: Arc::new(operator),
            associations: (0..p.associations)
                .map(|a| world.key(&World::association(a)))
                .collect::<Result<_, _>>()?,
            donors: (0..p.donors)
                .map(|d| world.key(&World::donor(d)))
                .collect::<Result<_, _>>()?,
            closed: (0..p.closed)
                .map(|c| world.key(&world.closed(c)))
                .collect::<Result<_, _>>()?,
            banned: world.key(&world.banned())?,
        })
    }

    /// The association that co-signs entry number `n` (they take turns).
    ///
    /// # Errors
    /// [`DemoError::Setup`] if the world has no association.
    pub fn association(&self, n: u64) -> Result<Arc<NoteSigner>, DemoError> {
        let count = self.associations.len() as u64;
        if count == 0 {
            return Err(DemoError::Setup("the world has no association".into()));
        }
        Ok(self.associations[(n % count) as usize].clone())
    }
}

/// `party_registered`: "signed by an operator AND by the new key (proof of possession)",
/// and by a consumer association the genesis declared (`n` picks which).
fn register(
    feed: &mut Feed,
    cast: &Cast,
    key: &Arc<NoteSigner>,
    role: &str,
    n: u64,
) -> Result<(), DemoError> {
    let party = key.name().as_str();
    feed.push(
        &json!({"kind": "party_registered", "id": format!("party_registered.{party}"),
                "party": party, "role": role, "key": key.vkey()}),
        vec![cast.operator.clone(), cast.association(n)?, key.clone()],
        Expect::Accepted,
    )
}

/// Step 1 (after the genesis, which the operator and the associations signed creating
/// the ledger): every other party registers its key.
///
/// # Errors
/// An unexpected answer; faults.
pub fn setup(feed: &mut Feed, world: &World, cast: &Cast) -> Result<(), DemoError> {
    let p = world.params();
    feed.progress("registering", p.donors + p.closed + 1 + p.students);
    for (n, d) in cast.donors.iter().chain(&cast.closed).enumerate() {
        register(feed, cast, d, "institution", n as u64)?;
    }
    register(feed, cast, &cast.banned, "institution", 0)?;
    for n in 0..p.students {
        let key = world.key(&World::student(n))?;
        register(feed, cast, &key, "student", n)?;
    }
    feed.flush()?;
    feed.finish_progress();
    refused_registrations(feed, world, cast)?;
    println!(
        "{} associations declared in the genesis; registered {} donor and {} closed institutions, {} students",
        p.associations,
        p.donors + 1,
        p.closed,
        p.students
    );
    Ok(())
}

/// The rules at work on parties: the operator alone cannot bring a party in (no
/// association co-signs), and a student's statement made for another ledger means
/// nothing here.
fn refused_registrations(feed: &mut Feed, world: &World, cast: &Cast) -> Result<(), DemoError> {
    let own = world.key("stu-0e0e0e")?;
    feed.push(
        &json!({"kind": "party_registered", "id": "party_registered.stu-0e0e0e",
                "party": "stu-0e0e0e", "role": "student", "key": own.vkey()}),
        vec![cast.operator.clone(), own],
        Expect::Refused("missing_signature"),
    )?;
    let student = World::student(0);
    let key = world.key(&student)?;
    feed.push(
        &json!({"kind": "key_revoked", "id": "key_revoked.copied",
                "ledger": "demo.lesson-ledger.example/another-city", "party": student,
                "key": key.vkey(), "reason": "lost"}),
        vec![key],
        Expect::Refused("wrong_ledger"),
    )?;
    feed.flush()
}

/// Step 2: the closures (operator) and the claims, recorded by the operator and
/// co-signed by the student and by a consumer association that checked the evidence:
/// "signed by an operator AND the student (double signature)", and no single key creates
/// value.
///
/// # Errors
/// An unexpected answer; faults.
pub fn closures_and_claims(feed: &mut Feed, world: &World, cast: &Cast) -> Result<(), DemoError> {
    let p = world.params();
    for c in 0..p.closed {
        let inst = world.closed(c);
        feed.push(
            &json!({"kind": "institution_closed", "id": format!("institution_closed.{inst}"),
                    "institution": inst,
                    "reason": "abnormal_closure"}),
            vec![cast.operator.clone()],
            Expect::Accepted,
        )?;
    }
    feed.progress("recording claims", p.students);
    let mut value: u64 = 0;
    for n in 0..p.students {
        let claim = world.claim(n);
        value = value.saturating_add(claim.value_fen());
        let student = world.key(&claim.student)?;
        feed.push(
            &claim.payload(),
            vec![cast.operator.clone(), student, cast.association(n)?],
            Expect::Accepted,
        )?;
    }
    feed.flush()?;
    feed.finish_progress();
    println!(
        "{} institutions closed; {} claims recorded, worth {} yuan",
        p.closed,
        p.students,
        yuan(value)
    );
    Ok(())
}

/// Step 3: donors white-listed, pledges offered (by the donor) and approved (by the
/// operator); then one institution is white-listed, black-listed on a bank's warning,
/// and its later pledge is refused.
///
/// # Errors
/// An unexpected answer; a pool below 1.4 billion yuan at `small`/`city`; faults.
pub fn pledges(feed: &mut Feed, world: &World, cast: &Cast) -> Result<(), DemoError> {
    let operator = || vec![cast.operator.clone()];
    for d in cast.donors.iter().chain(std::iter::once(&cast.banned)) {
        let inst = d.name().as_str();
        feed.push(
            &json!({"kind": "institution_whitelisted",
                    "id": format!("institution_whitelisted.{inst}"), "institution": inst,
                    "reason": "approved_donor"}),
            operator(),
            Expect::Accepted,
        )?;
    }
    let pledges = world.pledges();
    feed.progress("pledging", 2 * pledges.len() as u64);
    for spec in &pledges {
        let donor = cast
            .donors
            .get(spec.donor as usize)
            .ok_or_else(|| DemoError::Setup(format!("no donor {}", spec.donor)))?;
        feed.push(
            &spec.payload(donor.name().as_str()),
            vec![donor.clone()],
            Expect::Accepted,
        )?;
        feed.push(
            &json!({"kind": "pledge_approved", "id": format!("pledge_approved.{}", spec.pledge),
                    "pledge": spec.pledge}),
            operator(),
            Expect::Accepted,
        )?;
    }
    feed.flush()?;
    feed.finish_progress();
    // The black list outranks the white list: after the ban, nothing more is pledged.
    let banned = cast.banned.name().as_str();
    feed.push(
        &json!({"kind": "institution_blacklisted", "id": format!("institution_blacklisted.{banned}"),
                "institution": banned,
                "reason": "fund_outflow", "evidence_digest": blake3::hash(b"synthetic bank warning").to_hex().to_string()}),
        operator(),
        Expect::Accepted,
    )?;
    feed.push(
        &world.banned_pledge().payload(banned),
        vec![cast.banned.clone()],
        Expect::Refused("institution_banned"),
    )?;
    feed.flush()?;
    let pool = feed.transport().pool()?;
    println!(
        "{} pledges approved from {} donors, worth {} yuan; {banned} black-listed, its later pledge refused (institution_banned)",
        pool.pledges_approved,
        cast.donors.len(),
        yuan(pool.pledged.0)
    );
    if world.params().pool_target_fen.is_some() && pool.pledged.0 <= POOL_FLOOR_FEN {
        return Err(DemoError::check(
            "pool pledged (fen) above 1.4 billion yuan",
            POOL_FLOOR_FEN,
            pool.pledged.0,
        ));
    }
    Ok(())
}

/// Fen as yuan with thousands separators (`1,234,567.89`), integers only.
#[must_use]
pub fn yuan(fen: u64) -> String {
    let whole = (fen / 100).to_string();
    let mut out = String::with_capacity(whole.len() + whole.len() / 3 + 3);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    let cents = fen % 100;
    if cents != 0 {
        out.push_str(&format!(".{cents:02}"));
    }
    out
}
