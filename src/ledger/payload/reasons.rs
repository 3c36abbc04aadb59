//! The closed lists of an entry payload: a party's role and the reasons and outcomes
//! entries give (codes, never free text). Re-exported by [`super`].

use serde::{Deserialize, Serialize};

/// Role of a registered party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The education bureau's supervision platform.
    Operator,
    /// A tutoring institution: closed (owes lessons) or donor (pledges).
    Institution,
    /// A student or guardian, by pseudonymous ref.
    Student,
    /// A consumer association (消费者协会).
    Association,
}

impl Role {
    /// The role's snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Institution => "institution",
            Role::Student => "student",
            Role::Association => "association",
        }
    }
}

/// How the operator resolved a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    /// The dispute is right: the lesson is void and its value returns.
    Upheld,
    /// The dispute is wrong: the lesson stands and is final.
    Rejected,
}

/// Why a key is revoked: a closed list, so that no free text reaches the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// `lost`: the key is lost.
    Lost,
    /// `compromised`: someone else may hold the key.
    Compromised,
    /// `retired`: no longer used.
    Retired,
    /// `party_request`: the party asked.
    PartyRequest,
}

/// Why an institution's status changes; which codes fit which kind: [`StatusReason::fits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    // institution_closed
    /// `ceased_trading` (institution_closed).
    CeasedTrading,
    /// `abnormal_closure` (institution_closed).
    AbnormalClosure,
    /// `licence_revoked` (institution_closed).
    LicenceRevoked,
    /// `bankrupt` (institution_closed).
    Bankrupt,
    // institution_whitelisted
    /// `approved_donor` (institution_whitelisted).
    ApprovedDonor,
    // institution_blacklisted
    /// `fund_outflow` (institution_blacklisted).
    FundOutflow,
    /// `false_pledge` (institution_blacklisted).
    FalsePledge,
    /// `failed_delivery` (institution_blacklisted).
    FailedDelivery,
    /// `regulatory_order` (institution_blacklisted): a regulator ordered it.
    RegulatoryOrder,
}

impl StatusReason {
    /// The reason's code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StatusReason::CeasedTrading => "ceased_trading",
            StatusReason::AbnormalClosure => "abnormal_closure",
            StatusReason::LicenceRevoked => "licence_revoked",
            StatusReason::Bankrupt => "bankrupt",
            StatusReason::ApprovedDonor => "approved_donor",
            StatusReason::FundOutflow => "fund_outflow",
            StatusReason::FalsePledge => "false_pledge",
            StatusReason::FailedDelivery => "failed_delivery",
            StatusReason::RegulatoryOrder => "regulatory_order",
        }
    }

    /// Whether this reason may be given for `kind` (`institution_closed`,
    /// `institution_whitelisted`, `institution_blacklisted`).
    #[must_use]
    pub fn fits(self, kind: &str) -> bool {
        use StatusReason as R;
        match kind {
            "institution_closed" => matches!(
                self,
                R::CeasedTrading | R::AbnormalClosure | R::LicenceRevoked | R::Bankrupt
            ),
            "institution_whitelisted" => self == R::ApprovedDonor,
            "institution_blacklisted" => matches!(
                self,
                R::FundOutflow | R::FalsePledge | R::FailedDelivery | R::RegulatoryOrder
            ),
            _ => false,
        }
    }
}

/// Why a lesson is disputed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeReason {
    /// `not_taught`: the lesson did not take place.
    NotTaught,
    /// `not_attended`: the student was not there.
    NotAttended,
    /// `wrong_course`: not the course allocated.
    WrongCourse,
    /// `duplicate`: the same lesson recorded twice.
    Duplicate,
    /// `quality`: the lesson was not what was promised.
    Quality,
}

impl DisputeReason {
    /// The reason's code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeReason::NotTaught => "not_taught",
            DisputeReason::NotAttended => "not_attended",
            DisputeReason::WrongCourse => "wrong_course",
            DisputeReason::Duplicate => "duplicate",
            DisputeReason::Quality => "quality",
        }
    }
}

/// Why the operator resolved a dispute as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionReason {
    /// `delivery_not_proven`: the institution could not show the lesson was taught.
    DeliveryNotProven,
    /// `delivery_proven`: it was taught.
    DeliveryProven,
    /// `dispute_withdrawn`: the student withdrew the dispute.
    DisputeWithdrawn,
}

impl ResolutionReason {
    /// The reason's code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionReason::DeliveryNotProven => "delivery_not_proven",
            ResolutionReason::DeliveryProven => "delivery_proven",
            ResolutionReason::DisputeWithdrawn => "dispute_withdrawn",
        }
    }
}
