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
    Genesis, InstitutionStatus, KeyRevoked, KeyRotated, PartyRegistered, Role,
};
use crate::ledger::state::StateView;
use crate::ledger::units::{id_list, reason, Id, KeyRef};

/// The unit of account, fixed: integer fen of CNY.
pub(crate) const UNIT: &str = "CNY-fen";

pub(super) fn genesis<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &Genesis,
) -> Result<(), RuleError> {
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
    let operator = Id::new("operator", &p.operator)?;
    let key = KeyRef::new("operator_key", &p.operator_key)?;
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
    // "signed by the operator key it names"
    cx.signers.require_key(key.as_str(), "operator")?;
    let index = cx.ctx.index;
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
    cx.tx.put(Party {
        party: operator.clone(),
        role: Role::Operator,
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
        party: operator,
        registered_at: index,
        revoked_at: None,
    });
    cx.tx.put(Pool::default());
    Ok(())
}

pub(super) fn party_registered<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &PartyRegistered,
) -> Result<(), RuleError> {
    let party = Id::new("party", &p.party)?;
    let key = KeyRef::new("key", &p.key)?;
    // "signed by an operator AND by the new key (proof of possession)"
    cx.signers.require_role(Role::Operator)?;
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
    let index = cx.ctx.index;
    cx.tx.put(Party {
        party: party.clone(),
        role: p.role,
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
    // "signed by the old and the new key"
    cx.signers.require_key(old_key.as_str(), "old key")?;
    cx.signers.require_key(new_key.as_str(), "new key")?;
    let mut party: Party = cx.tx.need(party_id.as_str(), || RuleError::PartyUnknown {
        party: party_id.to_string(),
    })?;
    let mut old = live_key_of(cx, &party_id, &old_key)?;
    if cx.tx.find::<KeyRecord>(new_key.as_str())?.is_some() {
        return Err(RuleError::KeyInUse {
            key: new_key.to_string(),
        });
    }
    let index = cx.ctx.index;
    old.revoked_at = Some(index);
    party.keys.push(new_key.clone());
    cx.tx.put(old);
    cx.tx.put(party);
    cx.tx.put(KeyRecord {
        key: new_key,
        party: party_id,
        registered_at: index,
        revoked_at: None,
    });
    Ok(())
}

pub(super) fn key_revoked<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &KeyRevoked,
) -> Result<(), RuleError> {
    let party_id = Id::new("party", &p.party)?;
    let key = KeyRef::new("key", &p.key)?;
    reason("reason", &p.reason)?;
    // "signed by an operator (or by the key's own party)"
    cx.signers
        .require_party_or_role(&party_id, Role::Operator, "operator or the key's party")?;
    let party: Party = cx.tx.need(party_id.as_str(), || RuleError::PartyUnknown {
        party: party_id.to_string(),
    })?;
    let mut rec = live_key_of(cx, &party_id, &key)?;
    rec.revoked_at = Some(cx.ctx.index);
    cx.tx.put(rec);
    // Touching the party lists the revocation in its entries; its key list keeps every
    // key ever held (the key table says which are revoked).
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

pub(super) fn institution_status<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &InstitutionStatus,
    status: Status,
) -> Result<(), RuleError> {
    let id = Id::new("institution", &p.institution)?;
    reason("reason", &p.reason)?;
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
            // A closed institution owes: open its liability book if not open yet.
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
