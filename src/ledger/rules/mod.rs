//! The rules per entry kind, grouped by the objects they govern, and the helpers they
//! share. Each rule follows the same order: validate the payload's values, check the
//! signers' authority, check the state, then write. Writes go to an overlay and become
//! the entry's [`Changes`](super::Changes) only if every check passed.

// Every public item here is documented, and stays so (issue 16, item 7).
#![warn(missing_docs)]

mod allocations;
mod claims;
mod keys;
mod lessons;
mod parties;
mod pledges;
mod preferences;
mod runs;
mod time;

pub(crate) use keys::charge_entry;

use super::auth::Signers;
use super::error::RuleError;
use super::objects::{Allocation, Claim, Config, Liability, Party, Pledge, Pool};
use super::payload::{Entry, Role};
use super::state::{Overlay, StateView, POOL_ID};
use super::units::{Fen, Id, Lessons};
use super::EntryContext;

/// Everything a rule needs while deciding one entry.
pub(crate) struct Cx<'a, 'v, V: StateView + ?Sized> {
    pub(crate) tx: &'a mut Overlay<'v, V>,
    pub(crate) ctx: &'a EntryContext,
    pub(crate) signers: &'a mut Signers,
    /// `None` only while deciding the genesis.
    pub(crate) config: Option<Config>,
}

/// Apply the rule of `entry`'s kind.
pub(crate) fn dispatch<V: StateView + ?Sized>(
    cx: &mut Cx<'_, '_, V>,
    entry: &Entry,
) -> Result<(), RuleError> {
    match entry {
        Entry::Genesis(p) => parties::genesis(cx, p),
        Entry::PartyRegistered(p) => parties::party_registered(cx, p),
        Entry::KeyRotated(p) => parties::key_rotated(cx, p),
        Entry::KeyRevoked(p) => parties::key_revoked(cx, p),
        Entry::KeyRecovered(p) => keys::key_recovered(cx, p),
        Entry::InstitutionClosed(p) => parties::institution_status(cx, p, parties::Status::Closed),
        Entry::InstitutionWhitelisted(p) => {
            parties::institution_status(cx, p, parties::Status::Whitelisted)
        }
        Entry::InstitutionBlacklisted(p) => {
            parties::institution_status(cx, p, parties::Status::Banned)
        }
        Entry::ClaimRecorded(p) => claims::claim_recorded(cx, p),
        Entry::ClaimPreferencesSet(p) => preferences::claim_preferences_set(cx, p),
        Entry::PledgeOffered(p) => pledges::pledge_offered(cx, p),
        Entry::PledgeApproved(p) => pledges::pledge_approved(cx, p),
        Entry::PledgeWithdrawn(p) => pledges::pledge_withdrawn(cx, p),
        Entry::AllocationMade(p) => allocations::allocation_made(cx, p),
        Entry::MatchRun(p) => runs::match_run(cx, p),
        Entry::MatchRunClosed(p) => runs::match_run_closed(cx, p),
        Entry::TimeAttested(p) => time::time_attested(cx, p),
        Entry::AllocationExpired(p) => {
            allocations::allocation_ended(cx, p, allocations::AllocationEnd::Expired)
        }
        Entry::AllocationDeclined(p) => {
            allocations::allocation_ended(cx, p, allocations::AllocationEnd::Declined)
        }
        Entry::LessonConsumed(p) => lessons::lesson_delivered(cx, p, lessons::Delivery::Cosigned),
        Entry::LessonProposed(p) => lessons::lesson_delivered(cx, p, lessons::Delivery::Proposed),
        Entry::LessonConfirmed(p) => lessons::lesson_confirmed(cx, p),
        Entry::LessonDisputed(p) => lessons::lesson_disputed(cx, p),
        Entry::LessonDeemedConfirmed(p) => lessons::lesson_deemed_confirmed(cx, p),
        Entry::DisputeResolved(p) => lessons::dispute_resolved(cx, p),
    }
}

impl<V: StateView + ?Sized> Cx<'_, '_, V> {
    fn config(&self) -> Result<&Config, RuleError> {
        self.config.as_ref().ok_or(RuleError::GenesisRequired {
            index: self.ctx.index,
        })
    }

    fn pool(&self) -> Result<Pool, RuleError> {
        Ok(self.tx.find::<Pool>(POOL_ID)?.unwrap_or_default())
    }

    fn subject(&self, value: &str) -> Result<Id, RuleError> {
        let id = Id::new("subject", value)?;
        if self.config()?.subjects.contains(&id) {
            Ok(id)
        } else {
            Err(RuleError::UnknownSubject {
                subject: id.to_string(),
            })
        }
    }

    fn district(&self, field: &'static str, value: &str) -> Result<Id, RuleError> {
        let id = Id::new(field, value)?;
        if self.config()?.districts.contains(&id) {
            Ok(id)
        } else {
            Err(RuleError::UnknownDistrict {
                district: id.to_string(),
            })
        }
    }

    /// A registered party with role `role`.
    fn party_with_role(&self, id: &Id, role: Role) -> Result<Party, RuleError> {
        let p: Party = self.tx.need(id.as_str(), || match role {
            Role::Institution => RuleError::InstitutionUnknown {
                institution: id.to_string(),
            },
            _ => RuleError::PartyUnknown {
                party: id.to_string(),
            },
        })?;
        if p.role != role {
            return Err(RuleError::WrongRole {
                party: id.to_string(),
                expected: role.as_str(),
                actual: p.role.as_str(),
            });
        }
        Ok(p)
    }

    /// An institution that may still pledge or deliver: neither banned nor closed.
    fn active_institution(&self, id: &Id) -> Result<Party, RuleError> {
        let p = self.party_with_role(id, Role::Institution)?;
        if let Some(banned_at) = p.banned_at {
            return Err(RuleError::InstitutionBanned {
                institution: id.to_string(),
                banned_at,
            });
        }
        if p.closed_at.is_some() {
            return Err(RuleError::InstitutionClosed {
                institution: id.to_string(),
            });
        }
        Ok(p)
    }

    /// Give `lessons` an allocation has just released back to the pledge's available
    /// lessons and the claim's unreserved value.
    fn release(&mut self, alloc: &Allocation, lessons: Lessons) -> Result<(), RuleError> {
        let value = alloc
            .value_per_lesson
            .checked_mul(lessons.0, "released value")?;
        self.return_value(alloc, lessons, value)
    }

    /// Move `lessons` (worth `value`) of an allocation from reserved back to the claim's
    /// unreserved value and the pledge's available capacity.
    fn return_value(
        &mut self,
        alloc: &Allocation,
        lessons: Lessons,
        value: Fen,
    ) -> Result<(), RuleError> {
        let mut claim = self.claim_of(alloc)?;
        claim.value.unreserve(value)?;
        let mut pledge = self.pledge_of(alloc)?;
        pledge.capacity.unreserve(lessons)?;
        let mut pool = self.pool()?;
        pool.claims_reserved = pool
            .claims_reserved
            .checked_sub(value, "pool claims reserved")?;
        pool.claims_unreserved = pool
            .claims_unreserved
            .checked_add(value, "pool claims unreserved")?;
        pool.reserved = pool.reserved.checked_sub(value, "pool reserved")?;
        pool.available = pool.available.checked_add(value, "pool available")?;
        self.tx.put(claim);
        self.tx.put(pledge);
        self.tx.put(pool);
        Ok(())
    }

    /// One lesson of an allocation becomes final: "allocation consumed +1; claim reserved
    /// −v, consumed +v; pledge reserved −1, delivered +1". The caller has already moved
    /// the lesson to the allocation's `consumed` (from `remaining` or `pending`).
    fn finalize_lesson(&mut self, alloc: &Allocation) -> Result<(), RuleError> {
        let v = alloc.value_per_lesson;
        let mut claim = self.claim_of(alloc)?;
        claim.value.consume(v)?;
        let mut pledge = self.pledge_of(alloc)?;
        pledge.capacity.deliver(Lessons(1))?;
        let mut liability: Liability =
            self.tx
                .need(claim.institution.as_str(), || RuleError::StateCorrupt {
                    detail: format!("no liability for institution {}", claim.institution),
                })?;
        liability.made_good = liability.made_good.checked_add(v, "liability made good")?;
        let mut pool = self.pool()?;
        pool.claims_reserved = pool
            .claims_reserved
            .checked_sub(v, "pool claims reserved")?;
        pool.claims_consumed = pool
            .claims_consumed
            .checked_add(v, "pool claims consumed")?;
        pool.reserved = pool.reserved.checked_sub(v, "pool reserved")?;
        pool.delivered = pool.delivered.checked_add(v, "pool delivered")?;
        self.tx.put(claim);
        self.tx.put(pledge);
        self.tx.put(liability);
        self.tx.put(pool);
        Ok(())
    }

    /// Writes an allocation, and takes it off its claim's list of open allocations
    /// once nothing more can happen on it ([`Allocation::is_open`]). Every rule that
    /// ends an allocation or settles one of its lessons writes it through here, after
    /// its other writes (the claim read here is the one they left).
    fn put_allocation(&mut self, alloc: Allocation) -> Result<(), RuleError> {
        if !alloc.is_open() {
            let mut claim = self.claim_of(&alloc)?;
            if let Some(at) = claim
                .allocations
                .iter()
                .position(|a| *a == alloc.allocation)
            {
                claim.allocations.remove(at);
                self.tx.put(claim);
            }
        }
        self.tx.put(alloc);
        Ok(())
    }

    fn claim_of(&self, alloc: &Allocation) -> Result<Claim, RuleError> {
        self.tx
            .need(alloc.claim.as_str(), || RuleError::StateCorrupt {
                detail: format!(
                    "allocation {} names unknown claim {}",
                    alloc.allocation, alloc.claim
                ),
            })
    }

    fn pledge_of(&self, alloc: &Allocation) -> Result<Pledge, RuleError> {
        self.tx
            .need(alloc.pledge.as_str(), || RuleError::StateCorrupt {
                detail: format!(
                    "allocation {} names unknown pledge {}",
                    alloc.allocation, alloc.pledge
                ),
            })
    }
}

/// Check an optional off-log evidence digest (BLAKE3, 64 lowercase hex characters).
fn evidence(digest: Option<&str>) -> Result<(), RuleError> {
    match digest {
        Some(d) => crate::ledger::units::evidence_digest(d).map(|_| ()),
        None => Ok(()),
    }
}

/// Check `value` in `1..=max`.
fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<u64, RuleError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(RuleError::ValueOutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}
