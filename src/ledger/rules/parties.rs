//! Rules of `genesis`, `party_registered`, `key_rotated`, `key_revoked` and the
//! institution statuses (`institution_closed`, `institution_whitelisted`,
//! `institution_blacklisted`).

use super::{in_range, Cx};
use crate::ledger::error::RuleError;
use crate::ledger::limits::{
    ALLOCATION_VALIDITY_DAYS_MAX, CONFIRMATION_WINDOW_DAYS_MAX, DISTRICTS_MAX, ORIGIN_BYTES_MAX,
    SUBJECTS_MAX,
};
use crate::ledger::objects::{Config, KeyRecord, Party, Pool};
use crate::ledger::payload::{
    DeclaredAssociation, Genesis, InstitutionStatus, KeyRevoked, KeyRotated, PartyRegistered, Role,
};
use crate::ledger::state::StateView;
use crate::ledger::units::{id_list, Id, KeyRef};

/// The most associations a genesis declares: each co-signs it, beside the operator, within
/// the envelope's signature cap.
pub(crate) const ASSOCIATIONS_MAX: usize = crate::limits::SIGNATURES_PER_ENVELOPE_MAX - 1;

/// The opaque id pattern of each role's parties: a fixed prefix, then 4 to 32 lowercase
/// hex characters (a random or hashed reference, never a name or a number that identifies
/// a person). Operator ids are public bodies' names and keep the general id pattern.
fn party_id(role: Role, value: &str) -> Result<Id, RuleError> {
    let (prefix, min, pattern) = match role {
        Role::Operator => return Id::new("party", value),
        Role::Student => ("stu-", 4, "^stu-[0-9a-f]{4,32}$"),
        Role::Institution => ("inst-", 4, "^inst-[0-9a-f]{4,32}$"),
        Role::Association => ("assoc-", 2, "^assoc-[0-9a-f]{2,32}$"),
    };
    let invalid = || RuleError::PartyIdInvalid {
        role: role.as_str(),
        party: value.chars().take(64).collect(),
        pattern,
    };
    let rest = value.strip_prefix(prefix).ok_or_else(invalid)?;
    let hex = rest
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || !(min..=32).contains(&rest.len()) {
        return Err(invalid());
    }
    Id::new("party", value)
}

/// A key registered for `party` must be named by the party id: a key name is published
/// in every signature line, so it may carry nothing else (no name, no address).
pub(super) fn key_named_for(key: &KeyRef, party: &Id) -> Result<(), RuleError> {
    // A `KeyRef` always holds a '+' after its name.
    let name = key.as_str().split_once('+').map_or("", |(n, _)| n);
    if name == party.as_str() {
        Ok(())
    } else {
        Err(RuleError::KeyNameMismatch {
            name: name.chars().take(64).collect(),
            party: party.to_string(),
        })
    }
}

/// The operator's key is named by its party id or, as C2SP tlog-checkpoint recommends for
/// the key that signs checkpoints, by the ledger's origin: neither names a person.
fn operator_key_named(key: &KeyRef, operator: &Id, origin: &str) -> Result<(), RuleError> {
    let name = key.as_str().split_once('+').map_or("", |(n, _)| n);
    if name == origin {
        return Ok(());
    }
    key_named_for(key, operator)
}

/// The unit of account, fixed: integer fen of CNY.
pub(crate) const UNIT: &str = "CNY-fen";

pub(super) fn genesis<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &Genesis,
) -> Result<(), RuleError> {
    genesis_origin(p)?;
    let operator = Id::new("operator", &p.operator)?;
    let key = KeyRef::new("operator_key", &p.operator_key)?;
    operator_key_named(&key, &operator, &p.origin)?;
    let associations = declared_associations(&p.associations)?;
    let window = in_range(
        "confirmation_window_days",
        p.confirmation_window_days,
        1,
        u64::from(CONFIRMATION_WINDOW_DAYS_MAX),
    )?;
    let validity = in_range(
        "allocation_validity_days",
        p.allocation_validity_days,
        1,
        u64::from(ALLOCATION_VALIDITY_DAYS_MAX),
    )?;
    // A day shorter than a second would let a window pass between two entries of one
    // batch; longer than 24 hours would stretch the national platform's rules.
    let day_micros = in_range(
        "day_micros",
        p.day_micros,
        crate::ledger::limits::DAY_MICROS_MIN,
        crate::ledger::limits::DAY_MICROS,
    )?;
    if p.unit != UNIT {
        return Err(RuleError::UnitUnsupported {
            unit: p.unit.chars().take(32).collect(),
        });
    }
    let districts = id_list("districts", &p.districts, DISTRICTS_MAX)?;
    let subjects = id_list("subjects", &p.subjects, SUBJECTS_MAX)?;
    in_range("districts", districts.len() as u64, 1, DISTRICTS_MAX as u64)?;
    in_range("subjects", subjects.len() as u64, 1, SUBJECTS_MAX as u64)?;
    // "signed by the operator key it names", and by every association it declares: each
    // shows it holds its key, so the operator cannot declare an association of its own.
    cx.signers.require_key(key.as_str(), "operator")?;
    for (party, key) in &associations {
        cx.signers
            .require_key(key.as_str(), &format!("association {party}"))?;
    }
    cx.tx.put(Config {
        origin: p.origin.clone(),
        operator: operator.clone(),
        confirmation_window_days: window,
        allocation_validity_days: validity,
        day_micros,
        unit: UNIT.to_owned(),
        districts,
        subjects,
        genesis_time_micros: cx.ctx.time_micros,
    });
    put_party(cx, operator, Role::Operator, key);
    for (party, key) in associations {
        put_party(cx, party, Role::Association, key);
    }
    cx.tx.put(Pool::default());
    Ok(())
}

/// The genesis' origin: one line of visible text within the cap, and the ledger the
/// genesis names (`ledger`) is the one it founds.
fn genesis_origin(p: &Genesis) -> Result<(), RuleError> {
    if p.origin.len() > ORIGIN_BYTES_MAX {
        return Err(RuleError::FieldTooLong {
            field: "origin",
            bytes: p.origin.len(),
            max: ORIGIN_BYTES_MAX,
        });
    }
    // A checkpoint origin is one line of visible text.
    if p.origin.is_empty()
        || p.origin
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(RuleError::InvalidText { field: "origin" });
    }
    // The genesis names the ledger it founds: its `ledger` is its own origin.
    if p.ledger != p.origin {
        return Err(RuleError::WrongLedger {
            expected: p.origin.clone(),
            found: p.ledger.chars().take(64).collect(),
        });
    }
    Ok(())
}

/// The genesis' associations: 1..=[`ASSOCIATIONS_MAX`], opaque ids, keys named by them,
/// no party or key twice.
fn declared_associations(list: &[DeclaredAssociation]) -> Result<Vec<(Id, KeyRef)>, RuleError> {
    in_range(
        "associations",
        list.len() as u64,
        1,
        ASSOCIATIONS_MAX as u64,
    )?;
    let mut out: Vec<(Id, KeyRef)> = Vec::with_capacity(list.len());
    for a in list {
        let party = party_id(Role::Association, &a.party)?;
        let key = KeyRef::new("associations.key", &a.key)?;
        key_named_for(&key, &party)?;
        if out.iter().any(|(p, _)| *p == party) {
            return Err(RuleError::DuplicateItem {
                field: "associations",
                value: party.to_string(),
            });
        }
        out.push((party, key));
    }
    Ok(out)
}

/// A new party with its first key.
fn put_party<V: StateView + ?Sized>(cx: &mut Cx<'_, '_, V>, party: Id, role: Role, key: KeyRef) {
    let index = cx.ctx.index;
    cx.tx.put(Party {
        party: party.clone(),
        role,
        keys: vec![key.clone()],
        registered_at: index,
        closed_at: None,
        whitelisted_at: None,
        banned_at: None,
        pledges_unapproved: 0,
        entries: Vec::new(),
    });
    cx.tx.put(KeyRecord {
        key,
        party,
        registered_at: index,
        revoked_at: None,
    });
}

pub(super) fn party_registered<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &PartyRegistered,
) -> Result<(), RuleError> {
    if p.role == Role::Association {
        return Err(RuleError::RoleNotRegistrable {
            role: Role::Association.as_str(),
        });
    }
    let party = party_id(p.role, &p.party)?;
    let key = KeyRef::new("key", &p.key)?;
    key_named_for(&key, &party)?;
    // "signed by an operator AND by the new key (proof of possession)", AND by a consumer
    // association the genesis declared: no single key may bring a party into the ledger.
    cx.signers.require_role(Role::Operator)?;
    cx.signers.require_cosigner(Role::Association)?;
    cx.signers.require_key(key.as_str(), "new key")?;
    if cx.tx.find::<Party>(party.as_str())?.is_some() {
        return Err(RuleError::PartyExists {
            party: party.to_string(),
        });
    }
    if cx.tx.find::<KeyRecord>(key.as_str())?.is_some() {
        return Err(RuleError::KeyInUse {
            key: key.to_string(),
        });
    }
    put_party(cx, party, p.role, key);
    Ok(())
}

/// The key record of `key`, which must belong to `party` and not be revoked.
fn live_key_of<V: StateView + ?Sized>(
    cx: &Cx<'_, '_, V>,
    party: &Id,
    key: &KeyRef,
) -> Result<KeyRecord, RuleError> {
    let not_of_party = || RuleError::KeyNotOfParty {
        key: key.to_string(),
        party: party.to_string(),
    };
    let rec: KeyRecord = cx.tx.need(key.as_str(), not_of_party)?;
    if rec.party != *party {
        return Err(not_of_party());
    }
    if let Some(revoked_at) = rec.revoked_at {
        return Err(RuleError::KeyRevoked {
            key: key.to_string(),
            revoked_at,
        });
    }
    Ok(rec)
}

pub(super) fn key_rotated<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &KeyRotated,
) -> Result<(), RuleError> {
    let party_id = Id::new("party", &p.party)?;
    let old_key = KeyRef::new("old_key", &p.old_key)?;
    let new_key = KeyRef::new("new_key", &p.new_key)?;
    let config = cx.config()?;
    if party_id == config.operator {
        operator_key_named(&new_key, &party_id, &config.origin)?;
    } else {
        key_named_for(&new_key, &party_id)?;
    }
    // "signed by the old and the new key"
    cx.signers.require_key(old_key.as_str(), "old key")?;
    cx.signers.require_key(new_key.as_str(), "new key")?;
    let party: Party = cx.tx.need(party_id.as_str(), || RuleError::PartyUnknown {
        party: party_id.to_string(),
    })?;
    let mut old = live_key_of(cx, &party_id, &old_key)?;
    if cx.tx.find::<KeyRecord>(new_key.as_str())?.is_some() {
        return Err(RuleError::KeyInUse {
            key: new_key.to_string(),
        });
    }
    super::keys::count_key_change(cx, &party_id)?;
    let index = cx.ctx.index;
    old.revoked_at = Some(index);
    cx.tx.put(old);
    grant_key(cx, party, new_key);
    Ok(())
}

/// Gives `party` the live key `key` from this entry on: the party object keeps it among
/// its recent keys, and the key gets its own record (rotation and recovery share this).
pub(super) fn grant_key<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    mut party: Party,
    key: KeyRef,
) {
    party.push_key(key.clone());
    let record = KeyRecord {
        key,
        party: party.party.clone(),
        registered_at: cx.ctx.index,
        revoked_at: None,
    };
    cx.tx.put(party);
    cx.tx.put(record);
}

pub(super) fn key_revoked<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &KeyRevoked,
) -> Result<(), RuleError> {
    let party_id = Id::new("party", &p.party)?;
    let key = KeyRef::new("key", &p.key)?;
    super::evidence(p.evidence_digest.as_deref())?;
    // "signed by an operator (or by the key's own party)"
    cx.signers
        .require_party_or_role(&party_id, Role::Operator, "operator or the key's party")?;
    let party: Party = cx.tx.need(party_id.as_str(), || RuleError::PartyUnknown {
        party: party_id.to_string(),
    })?;
    let mut rec = live_key_of(cx, &party_id, &key)?;
    super::keys::count_key_change(cx, &party_id)?;
    rec.revoked_at = Some(cx.ctx.index);
    cx.tx.put(rec);
    // Touching the party lists the revocation in its entries; its key list keeps its
    // recent keys (the key table says which are revoked).
    cx.tx.put(party);
    Ok(())
}

/// The three institution statuses the operator records.
#[derive(Clone, Copy)]
pub(super) enum Status {
    Closed,
    Whitelisted,
    Banned,
}

impl Status {
    /// The entry kind that records this status.
    fn kind(self) -> &'static str {
        match self {
            Status::Closed => "institution_closed",
            Status::Whitelisted => "institution_whitelisted",
            Status::Banned => "institution_blacklisted",
        }
    }
}

pub(super) fn institution_status<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &InstitutionStatus,
    status: Status,
) -> Result<(), RuleError> {
    let id = Id::new("institution", &p.institution)?;
    let kind = status.kind();
    if !p.reason.fits(kind) {
        return Err(RuleError::ReasonNotAllowed {
            reason: p.reason.as_str(),
            kind,
        });
    }
    super::evidence(p.evidence_digest.as_deref())?;
    cx.signers.require_role(Role::Operator)?;
    let mut inst = cx.party_with_role(&id, Role::Institution)?;
    let index = cx.ctx.index;
    let repeated = |status| RuleError::InstitutionStatusRepeated {
        institution: id.to_string(),
        status,
    };
    match status {
        Status::Closed => {
            if inst.closed_at.is_some() {
                return Err(repeated("closed"));
            }
            inst.closed_at = Some(index);
            open_liability(cx, &id)?;
        }
        Status::Whitelisted => {
            if let Some(banned_at) = inst.banned_at {
                // A ban is final: the black list outranks the white list.
                return Err(RuleError::InstitutionBanned {
                    institution: id.to_string(),
                    banned_at,
                });
            }
            if inst.closed_at.is_some() {
                return Err(RuleError::InstitutionClosed {
                    institution: id.to_string(),
                });
            }
            if inst.whitelisted_at.is_some() {
                return Err(repeated("whitelisted"));
            }
            inst.whitelisted_at = Some(index);
        }
        Status::Banned => {
            if inst.banned_at.is_some() {
                return Err(repeated("banned"));
            }
            inst.banned_at = Some(index);
        }
    }
    cx.tx.put(inst);
    Ok(())
}

/// A closed institution owes: its liability book, opened empty if not open yet.
fn open_liability<V: StateView + ?Sized>(cx: &mut Cx<'_, '_, V>, id: &Id) -> Result<(), RuleError> {
    if cx
        .tx
        .find::<crate::ledger::objects::Liability>(id.as_str())?
        .is_none()
    {
        cx.tx.put(crate::ledger::objects::Liability {
            institution: id.clone(),
            students: 0,
            claims: 0,
            lessons_owed: crate::ledger::units::Lessons(0),
            owed: crate::ledger::units::Fen(0),
            made_good: crate::ledger::units::Fen(0),
        });
    }
    Ok(())
}
