//! Money and lessons conserved by construction: the balance parts of a claim, a pledge and
//! an allocation, in types whose fields are private and whose only changes are transfers
//! from one part to another.
//!
//! Invariants held by the types (the MISSION's balance identities):
//! - [`ClaimValue`]: `total = unreserved + reserved + consumed` (fen);
//! - [`PledgeCapacity`]: `total = available + reserved + delivered + withdrawn` (lessons);
//! - [`AllocationLessons`]: `total = consumed + pending + remaining + released` (lessons).
//!
//! A new balance puts its whole total in its first part; a transfer subtracts from one
//! part and adds to another, both checked, and changes nothing unless both succeed; the
//! total is never written after construction. So no code path — rules, replay, a bug in
//! either — can hold an unbalanced object: decoding a stored one that does not add up is
//! refused ([`Unbalanced`]) rather than loaded.
//!
//! ```
//! use lesson_ledger::ledger::conservation::ClaimValue;
//! use lesson_ledger::ledger::Fen;
//! let mut v = ClaimValue::new(Fen(1_000));
//! v.reserve(Fen(300)).unwrap();
//! v.consume(Fen(100)).unwrap();
//! assert_eq!((v.unreserved(), v.reserved(), v.consumed()), (Fen(700), Fen(200), Fen(100)));
//! // Consuming more than is reserved changes nothing.
//! assert_eq!(v.consume(Fen(201)).unwrap_err().code(), "underflow");
//! assert_eq!(v.reserved(), Fen(200));
//! ```

use super::error::RuleError;
use super::units::{Fen, Lessons};

/// Stored balance parts that do not add up to their total.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: the parts do not add up to the total {total}")]
pub struct Unbalanced {
    /// Which identity.
    pub what: &'static str,
    /// The total stored.
    pub total: u64,
}

/// Moves `amount` from `from` to `to`, or changes nothing.
fn transfer(
    from: &mut u64,
    to: &mut u64,
    amount: u64,
    what: &'static str,
) -> Result<(), RuleError> {
    let new_from = from
        .checked_sub(amount)
        .ok_or(RuleError::Underflow { what })?;
    let new_to = to.checked_add(amount).ok_or(RuleError::Overflow { what })?;
    *from = new_from;
    *to = new_to;
    Ok(())
}

fn sum(parts: &[u64]) -> Option<u64> {
    parts.iter().try_fold(0u64, |a, b| a.checked_add(*b))
}

/// A claim's value split: `total = unreserved + reserved + consumed`, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimValue {
    total: u64,
    unreserved: u64,
    reserved: u64,
    consumed: u64,
}

impl ClaimValue {
    /// A new claim's value: all of it unreserved.
    #[must_use]
    pub fn new(total: Fen) -> ClaimValue {
        ClaimValue {
            total: total.0,
            unreserved: total.0,
            reserved: 0,
            consumed: 0,
        }
    }

    /// The parts as stored, checked.
    ///
    /// # Errors
    /// [`Unbalanced`] if they do not add up.
    pub fn from_parts(
        total: Fen,
        unreserved: Fen,
        reserved: Fen,
        consumed: Fen,
    ) -> Result<ClaimValue, Unbalanced> {
        if sum(&[unreserved.0, reserved.0, consumed.0]) != Some(total.0) {
            return Err(Unbalanced {
                what: "claim value",
                total: total.0,
            });
        }
        Ok(ClaimValue {
            total: total.0,
            unreserved: unreserved.0,
            reserved: reserved.0,
            consumed: consumed.0,
        })
    }

    /// The claim's whole value.
    #[must_use]
    pub fn total(&self) -> Fen {
        Fen(self.total)
    }
    /// Value not reserved by any allocation.
    #[must_use]
    pub fn unreserved(&self) -> Fen {
        Fen(self.unreserved)
    }
    /// Value reserved by active allocations (and pending lessons).
    #[must_use]
    pub fn reserved(&self) -> Fen {
        Fen(self.reserved)
    }
    /// Value of lessons consumed.
    #[must_use]
    pub fn consumed(&self) -> Fen {
        Fen(self.consumed)
    }

    /// Unreserved → reserved (an allocation is made).
    ///
    /// # Errors
    /// `underflow` when less is unreserved; nothing changes.
    pub fn reserve(&mut self, fen: Fen) -> Result<(), RuleError> {
        transfer(
            &mut self.unreserved,
            &mut self.reserved,
            fen.0,
            "claim unreserved",
        )
    }
    /// Reserved → unreserved (an allocation releases what it did not use).
    ///
    /// # Errors
    /// `underflow` when less is reserved; nothing changes.
    pub fn unreserve(&mut self, fen: Fen) -> Result<(), RuleError> {
        transfer(
            &mut self.reserved,
            &mut self.unreserved,
            fen.0,
            "claim reserved",
        )
    }
    /// Reserved → consumed (a lesson becomes final).
    ///
    /// # Errors
    /// `underflow` when less is reserved; nothing changes.
    pub fn consume(&mut self, fen: Fen) -> Result<(), RuleError> {
        transfer(
            &mut self.reserved,
            &mut self.consumed,
            fen.0,
            "claim reserved",
        )
    }
}

/// A pledge's lessons: `total = available + reserved + delivered + withdrawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PledgeCapacity {
    total: u64,
    available: u64,
    reserved: u64,
    delivered: u64,
    withdrawn: u64,
}

impl PledgeCapacity {
    /// A new pledge's capacity: all of it available.
    #[must_use]
    pub fn new(total: Lessons) -> PledgeCapacity {
        PledgeCapacity {
            total: total.0,
            available: total.0,
            reserved: 0,
            delivered: 0,
            withdrawn: 0,
        }
    }

    /// The parts as stored, checked.
    ///
    /// # Errors
    /// [`Unbalanced`] if they do not add up.
    pub fn from_parts(
        total: Lessons,
        available: Lessons,
        reserved: Lessons,
        delivered: Lessons,
        withdrawn: Lessons,
    ) -> Result<PledgeCapacity, Unbalanced> {
        if sum(&[available.0, reserved.0, delivered.0, withdrawn.0]) != Some(total.0) {
            return Err(Unbalanced {
                what: "pledge capacity",
                total: total.0,
            });
        }
        Ok(PledgeCapacity {
            total: total.0,
            available: available.0,
            reserved: reserved.0,
            delivered: delivered.0,
            withdrawn: withdrawn.0,
        })
    }

    /// The pledge's whole capacity.
    #[must_use]
    pub fn total(&self) -> Lessons {
        Lessons(self.total)
    }
    /// Lessons not reserved, delivered or withdrawn.
    #[must_use]
    pub fn available(&self) -> Lessons {
        Lessons(self.available)
    }
    /// Lessons reserved by allocations.
    #[must_use]
    pub fn reserved(&self) -> Lessons {
        Lessons(self.reserved)
    }
    /// Lessons delivered (final).
    #[must_use]
    pub fn delivered(&self) -> Lessons {
        Lessons(self.delivered)
    }
    /// Lessons the donor withdrew.
    #[must_use]
    pub fn withdrawn(&self) -> Lessons {
        Lessons(self.withdrawn)
    }

    /// Available → reserved.
    ///
    /// # Errors
    /// `underflow` when fewer are available; nothing changes.
    pub fn reserve(&mut self, k: Lessons) -> Result<(), RuleError> {
        transfer(
            &mut self.available,
            &mut self.reserved,
            k.0,
            "pledge available",
        )
    }
    /// Reserved → available.
    ///
    /// # Errors
    /// `underflow` when fewer are reserved; nothing changes.
    pub fn unreserve(&mut self, k: Lessons) -> Result<(), RuleError> {
        transfer(
            &mut self.reserved,
            &mut self.available,
            k.0,
            "pledge reserved",
        )
    }
    /// Reserved → delivered.
    ///
    /// # Errors
    /// `underflow` when fewer are reserved; nothing changes.
    pub fn deliver(&mut self, k: Lessons) -> Result<(), RuleError> {
        transfer(
            &mut self.reserved,
            &mut self.delivered,
            k.0,
            "pledge reserved",
        )
    }
    /// Available → withdrawn.
    ///
    /// # Errors
    /// `underflow` when fewer are available; nothing changes.
    pub fn withdraw(&mut self, k: Lessons) -> Result<(), RuleError> {
        transfer(
            &mut self.available,
            &mut self.withdrawn,
            k.0,
            "pledge available",
        )
    }
}

/// An allocation's lessons: `total = consumed + pending + remaining + released`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationLessons {
    total: u64,
    consumed: u64,
    pending: u64,
    remaining: u64,
    released: u64,
}

impl AllocationLessons {
    /// A new allocation: all of it remaining.
    #[must_use]
    pub fn new(total: Lessons) -> AllocationLessons {
        AllocationLessons {
            total: total.0,
            consumed: 0,
            pending: 0,
            remaining: total.0,
            released: 0,
        }
    }

    /// The parts as stored, checked.
    ///
    /// # Errors
    /// [`Unbalanced`] if they do not add up.
    pub fn from_parts(
        total: Lessons,
        consumed: Lessons,
        pending: Lessons,
        remaining: Lessons,
        released: Lessons,
    ) -> Result<AllocationLessons, Unbalanced> {
        if sum(&[consumed.0, pending.0, remaining.0, released.0]) != Some(total.0) {
            return Err(Unbalanced {
                what: "allocation lessons",
                total: total.0,
            });
        }
        Ok(AllocationLessons {
            total: total.0,
            consumed: consumed.0,
            pending: pending.0,
            remaining: remaining.0,
            released: released.0,
        })
    }

    /// The lessons allocated (k).
    #[must_use]
    pub fn total(&self) -> Lessons {
        Lessons(self.total)
    }
    /// Lessons final.
    #[must_use]
    pub fn consumed(&self) -> Lessons {
        Lessons(self.consumed)
    }
    /// Lessons proposed or disputed, not yet final.
    #[must_use]
    pub fn pending(&self) -> Lessons {
        Lessons(self.pending)
    }
    /// Lessons still to be taught.
    #[must_use]
    pub fn remaining(&self) -> Lessons {
        Lessons(self.remaining)
    }
    /// Lessons given back when the allocation ended.
    #[must_use]
    pub fn released(&self) -> Lessons {
        Lessons(self.released)
    }

    /// One remaining lesson is proposed: remaining → pending.
    ///
    /// # Errors
    /// `underflow` when none remains; nothing changes.
    pub fn propose(&mut self) -> Result<(), RuleError> {
        transfer(
            &mut self.remaining,
            &mut self.pending,
            1,
            "allocation remaining",
        )
    }
    /// One remaining lesson is consumed at once: remaining → consumed.
    ///
    /// # Errors
    /// `underflow` when none remains; nothing changes.
    pub fn consume_remaining(&mut self) -> Result<(), RuleError> {
        transfer(
            &mut self.remaining,
            &mut self.consumed,
            1,
            "allocation remaining",
        )
    }
    /// One pending lesson becomes final: pending → consumed.
    ///
    /// # Errors
    /// `underflow` when none is pending; nothing changes.
    pub fn confirm_pending(&mut self) -> Result<(), RuleError> {
        transfer(
            &mut self.pending,
            &mut self.consumed,
            1,
            "allocation pending",
        )
    }
    /// One pending lesson is void and goes back: pending → remaining.
    ///
    /// # Errors
    /// `underflow` when none is pending; nothing changes.
    pub fn void_pending(&mut self) -> Result<(), RuleError> {
        transfer(
            &mut self.pending,
            &mut self.remaining,
            1,
            "allocation pending",
        )
    }
    /// One pending lesson of an ended allocation is void and goes back to the pool:
    /// pending → released.
    ///
    /// # Errors
    /// `underflow` when none is pending; nothing changes.
    pub fn release_pending(&mut self) -> Result<(), RuleError> {
        transfer(
            &mut self.pending,
            &mut self.released,
            1,
            "allocation pending",
        )
    }
    /// Every remaining lesson is released; returns how many.
    ///
    /// # Errors
    /// `overflow` (cannot happen: the parts sum to the total); nothing changes.
    pub fn release_remaining(&mut self) -> Result<Lessons, RuleError> {
        let rest = self.remaining;
        transfer(
            &mut self.remaining,
            &mut self.released,
            rest,
            "allocation released",
        )?;
        Ok(Lessons(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_that_fails_changes_nothing() {
        let mut p = PledgeCapacity::new(Lessons(10));
        p.reserve(Lessons(4)).unwrap();
        assert_eq!(p.deliver(Lessons(5)).unwrap_err().code(), "underflow");
        assert_eq!((p.available(), p.reserved()), (Lessons(6), Lessons(4)));
        p.withdraw(Lessons(6)).unwrap();
        assert_eq!(p.reserve(Lessons(1)).unwrap_err().code(), "underflow");
        let mut a = AllocationLessons::new(Lessons(2));
        a.propose().unwrap();
        a.consume_remaining().unwrap();
        assert_eq!(a.propose().unwrap_err().code(), "underflow");
        a.void_pending().unwrap();
        assert_eq!(a.release_remaining().unwrap(), Lessons(1));
        assert_eq!(
            (a.consumed(), a.pending(), a.remaining(), a.released()),
            (Lessons(1), Lessons(0), Lessons(0), Lessons(1))
        );
    }

    #[test]
    fn stored_parts_that_do_not_add_up_are_refused() {
        assert!(ClaimValue::from_parts(Fen(10), Fen(5), Fen(3), Fen(2)).is_ok());
        assert!(ClaimValue::from_parts(Fen(10), Fen(5), Fen(3), Fen(3)).is_err());
        assert!(ClaimValue::from_parts(Fen(1), Fen(u64::MAX), Fen(2), Fen(0)).is_err());
        assert!(PledgeCapacity::from_parts(
            Lessons(4),
            Lessons(1),
            Lessons(1),
            Lessons(1),
            Lessons(0)
        )
        .is_err());
        assert!(AllocationLessons::from_parts(
            Lessons(4),
            Lessons(1),
            Lessons(1),
            Lessons(1),
            Lessons(1)
        )
        .is_ok());
    }
}
