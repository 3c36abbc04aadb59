//! Who signed an entry, and whether they may: resolves each verified signer's key to its
//! registered party, refuses revoked keys, and lets each rule claim the signatures it
//! needs; a signature nobody claimed is refused.
//!
//! The MISSION's rule: "Only the party with the authority for an entry can sign it, with
//! a key registered in the ledger before that entry; revoked keys sign nothing after
//! revocation." Keys not yet registered are kept unresolved, because two kinds are signed
//! by a new key (`party_registered`, `key_rotated`); any other use of one is refused as
//! `signer_not_registered` when the entry is finished.

use super::error::RuleError;
use super::objects::{KeyRecord, Party};
use super::payload::Role;
use super::state::{Overlay, StateView};
use super::units::Id;

struct Signer {
    key: String,
    /// The registered party and its role; `None` if the key is not registered.
    party: Option<(Id, Role)>,
    used: bool,
}

/// The signers of one entry, resolved against the state before it.
pub(crate) struct Signers {
    list: Vec<Signer>,
    kind: &'static str,
}

impl Signers {
    /// Resolve every signer key.
    ///
    /// # Errors
    /// `key_revoked` for a revoked key; `state_*` from the store.
    pub(crate) fn resolve<V: StateView + ?Sized>(
        tx: &Overlay<'_, V>,
        keys: &[String],
        kind: &'static str,
    ) -> Result<Signers, RuleError> {
        let mut list = Vec::with_capacity(keys.len());
        for key in keys {
            let party = match tx.find::<KeyRecord>(key)? {
                None => None,
                Some(rec) => {
                    if let Some(revoked_at) = rec.revoked_at {
                        return Err(RuleError::KeyRevoked {
                            key: key.clone(),
                            revoked_at,
                        });
                    }
                    let party: Party = tx.need(rec.party.as_str(), || RuleError::StateCorrupt {
                        detail: format!("key {key} names unknown party {}", rec.party),
                    })?;
                    Some((party.party, party.role))
                }
            };
            list.push(Signer {
                key: key.clone(),
                party,
                used: false,
            });
        }
        Ok(Signers { list, kind })
    }

    /// Claim every signature made with a key of a party for which `ok(party, role)`;
    /// at least one must exist.
    fn require(
        &mut self,
        role_name: &str,
        ok: impl Fn(&Id, Role) -> bool,
    ) -> Result<Id, RuleError> {
        let mut found: Option<Id> = None;
        for s in &mut self.list {
            if let Some((p, r)) = &s.party {
                if ok(p, *r) {
                    s.used = true;
                    found.get_or_insert_with(|| p.clone());
                }
            }
        }
        if let Some(p) = found {
            return Ok(p);
        }
        // A registered signer is present but has no authority here: say so by name.
        if let Some((p, _)) = self
            .list
            .iter()
            .filter(|s| !s.used)
            .find_map(|s| s.party.as_ref())
        {
            return Err(RuleError::NotAuthorized {
                party: p.to_string(),
                kind: self.kind,
            });
        }
        Err(RuleError::MissingSignature {
            role: role_name.to_owned(),
        })
    }

    /// A signature by any party with role `role`.
    pub(crate) fn require_role(&mut self, role: Role) -> Result<Id, RuleError> {
        self.require(role.as_str(), |_, r| r == role)
    }

    /// A co-signature by any party with role `role`, which the entry needs besides its
    /// author's: its absence is `missing_signature`, whoever else signed.
    pub(crate) fn require_cosigner(&mut self, role: Role) -> Result<Id, RuleError> {
        self.require(role.as_str(), |_, r| r == role)
            .map_err(|e| match e {
                RuleError::NotAuthorized { .. } => RuleError::MissingSignature {
                    role: role.as_str().to_owned(),
                },
                other => other,
            })
    }

    /// A signature by party `party` (as `role_name`, for the error).
    pub(crate) fn require_party(&mut self, party: &Id, role_name: &str) -> Result<(), RuleError> {
        self.require(&format!("{role_name} {party}"), |p, _| p == party)
            .map(|_| ())
    }

    /// A signature by party `party` or by any party with role `role`.
    pub(crate) fn require_party_or_role(
        &mut self,
        party: &Id,
        role: Role,
        role_name: &str,
    ) -> Result<Id, RuleError> {
        self.require(role_name, |p, r| p == party || r == role)
    }

    /// A signature by exactly `key`, registered or not.
    pub(crate) fn require_key(&mut self, key: &str, role_name: &str) -> Result<(), RuleError> {
        match self.list.iter_mut().find(|s| s.key == key) {
            Some(s) => {
                s.used = true;
                Ok(())
            }
            None => Err(RuleError::MissingSignature {
                role: role_name.to_owned(),
            }),
        }
    }

    /// The entry's author: the party of the first registered signer, in envelope order.
    /// Entry ids are scoped by it, so only a party's own signature can use an id in its
    /// namespace.
    ///
    /// # Errors
    /// `signer_not_registered` (or `missing_signature` with no signer at all) when no
    /// signer is registered.
    pub(crate) fn author(&self) -> Result<Id, RuleError> {
        if let Some((party, _)) = self.list.iter().find_map(|s| s.party.as_ref()) {
            return Ok(party.clone());
        }
        match self.list.first() {
            Some(s) => Err(RuleError::SignerNotRegistered { key: s.key.clone() }),
            None => Err(RuleError::MissingSignature {
                role: "registered party".to_owned(),
            }),
        }
    }

    /// The registered parties that signed, each once, in envelope order.
    pub(crate) fn parties(&self) -> impl Iterator<Item = (&Id, Role)> + '_ {
        self.list.iter().enumerate().filter_map(|(i, s)| {
            let (p, r) = s.party.as_ref()?;
            // Two keys of one party (a rotation) are one signer for quotas.
            let seen = self.list[..i]
                .iter()
                .any(|e| e.party.as_ref().map(|(q, _)| q) == Some(p));
            (!seen).then_some((p, *r))
        })
    }

    /// Every signature must have been claimed by the rule.
    ///
    /// # Errors
    /// `signer_not_registered` or `unexpected_signer` for the first one not claimed.
    pub(crate) fn finish(self) -> Result<(), RuleError> {
        match self.list.into_iter().find(|s| !s.used) {
            None => Ok(()),
            Some(s) if s.party.is_none() => Err(RuleError::SignerNotRegistered { key: s.key }),
            Some(s) => Err(RuleError::UnexpectedSigner { key: s.key }),
        }
    }
}
