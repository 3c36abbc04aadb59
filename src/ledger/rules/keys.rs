//! Rules of `key_recovered` (a lost or stolen key replaced under two-party control) and
//! the per-party quotas (entries and key changes per quota day).
//!
//! Recovery: "signed by the operator, by a consumer association, and by the new key
//! (proof of possession); refused for an unknown party and for the operator". Every live
//! key of the party is revoked at the entry, so a key a thief rotated in is undone the
//! same way as a lost one: neither the operator nor an association alone can take over
//! a party's identity, and the party's old key (or the thief's) has no say.
//!
//! Quotas: an institution or student signs at most `ENTRIES_PER_PARTY_PER_DAY_MAX`
//! entries and makes at most `KEY_CHANGES_PER_PARTY_PER_DAY_MAX` key changes per quota
//! day (`QUOTA_DAY_MICROS` of ledger time, counted from the genesis); a party over either
//! is refused with `party_quota_exceeded` / `key_changes_exceeded` until the next day.

use super::Cx;
use crate::ledger::auth::Signers;
use crate::ledger::error::RuleError;
use crate::ledger::limits::{
    ENTRIES_PER_PARTY_PER_DAY_MAX, KEY_CHANGES_PER_PARTY_PER_DAY_MAX, QUOTA_DAY_MICROS,
};
use crate::ledger::objects::{Config, KeyRecord, Party, PartyQuota};
use crate::ledger::payload::{KeyRecovered, Role};
use crate::ledger::state::{Overlay, StateView};
use crate::ledger::units::{Id, KeyRef};
use crate::ledger::EntryContext;

pub(super) fn key_recovered<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    p: &KeyRecovered,
) -> Result<(), RuleError> {
    let party_id = Id::new("party", &p.party)?;
    let new_key = KeyRef::new("new_key", &p.new_key)?;
    // Format v2: a key's name is its party's id, as for every other key a party gets
    // (the operator's key, the one named after the origin, is never recovered).
    super::parties::key_named_for(&new_key, &party_id)?;
    // "signed by the operator, by a consumer association, and by the new key"
    cx.signers.require_role(Role::Operator)?;
    cx.signers.require_role(Role::Association)?;
    cx.signers.require_key(new_key.as_str(), "new key")?;
    let party: Party = cx.tx.need(party_id.as_str(), || RuleError::PartyUnknown {
        party: party_id.to_string(),
    })?;
    if party.role == Role::Operator {
        return Err(RuleError::OperatorKeyNotRecoverable);
    }
    if cx.tx.find::<KeyRecord>(new_key.as_str())?.is_some() {
        return Err(RuleError::KeyInUse {
            key: new_key.to_string(),
        });
    }
    count_key_change(cx, &party_id)?;
    let index = cx.ctx.index;
    // A party has at most one live key (registration adds one, a rotation replaces it,
    // a revocation ends it), and it is the newest kept; revoke every live one anyway.
    for key in &party.keys {
        let mut rec: KeyRecord = cx.tx.need(key.as_str(), || RuleError::StateCorrupt {
            detail: format!("party {party_id} names unknown key {key}"),
        })?;
        if rec.revoked_at.is_none() {
            rec.revoked_at = Some(index);
            cx.tx.put(rec);
        }
    }
    super::parties::grant_key(cx, party, new_key);
    Ok(())
}

/// The quota day of ledger time `time_micros`.
fn quota_day(config: &Config, time_micros: u64) -> u64 {
    time_micros.saturating_sub(config.genesis_time_micros) / QUOTA_DAY_MICROS
}

/// `party`'s counters for the quota day of the entry (fresh on a new day).
fn quota_of<V: StateView + ?Sized>(
    tx: &Overlay<'_, V>,
    config: &Config,
    ctx: &EntryContext,
    party: &Id,
) -> Result<PartyQuota, RuleError> {
    let day = quota_day(config, ctx.time_micros);
    Ok(match tx.find::<PartyQuota>(party.as_str())? {
        Some(q) if q.day == day => q,
        _ => PartyQuota {
            party: party.clone(),
            day,
            entries: 0,
            key_changes: 0,
        },
    })
}

/// Counts one key change of `party`.
///
/// # Errors
/// `key_changes_exceeded` when the party has made its day's key changes.
pub(super) fn count_key_change<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    party: &Id,
) -> Result<(), RuleError> {
    let mut q = quota_of(cx.tx, cx.config()?, cx.ctx, party)?;
    if q.key_changes >= KEY_CHANGES_PER_PARTY_PER_DAY_MAX {
        return Err(RuleError::KeyChangesExceeded {
            party: party.to_string(),
            day: q.day,
            max: KEY_CHANGES_PER_PARTY_PER_DAY_MAX,
        });
    }
    q.key_changes += 1;
    cx.tx.put(q);
    Ok(())
}

/// Counts the entry against the quota of every institution and student that signed it.
///
/// # Errors
/// `party_quota_exceeded` for the first signer over its day's quota.
pub(crate) fn charge_entry<V: StateView + ?Sized>(
    tx: &mut Overlay<'_, V>,
    config: &Config,
    ctx: &EntryContext,
    signers: &Signers,
) -> Result<(), RuleError> {
    for (party, role) in signers.parties() {
        if matches!(role, Role::Operator | Role::Association) {
            continue;
        }
        let mut q = quota_of(tx, config, ctx, party)?;
        if q.entries >= ENTRIES_PER_PARTY_PER_DAY_MAX {
            return Err(RuleError::PartyQuotaExceeded {
                party: party.to_string(),
                day: q.day,
                max: ENTRIES_PER_PARTY_PER_DAY_MAX,
            });
        }
        q.entries += 1;
        tx.put(q);
    }
    Ok(())
}
