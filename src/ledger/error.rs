//! The one error type of the lesson-credit rules, [`RuleError`], and its stable codes.
//!
//! Every refusal names the rule broken with a stable snake_case code ([`RuleError::code`])
//! and carries the fields that say what was wrong. A refused entry changes nothing: the
//! rules are a pure function from (state, entry) to changes, so an error simply means no
//! changes were produced.
//!
//! ```
//! use lesson_ledger::ledger::RuleError;
//! let e = RuleError::ClaimUnknown { claim: "c-1".into() };
//! assert_eq!(e.code(), "claim_unknown");
//! assert!(e.to_string().contains("c-1"));
//! ```

/// Why the rules refused an entry (or, for `StateCorrupt`, why they could not decide).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    // --- shape of the payload ---
    #[error("payload of {bytes} bytes exceeds the cap of {max}")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("malformed payload: {detail}")]
    MalformedPayload { detail: String },
    #[error("unknown entry kind {kind:?}")]
    UnknownKind { kind: String },
    #[error("unknown field {field:?} for kind {kind}")]
    UnknownField { kind: String, field: String },
    #[error("missing field {field:?} for kind {kind}")]
    MissingField { kind: String, field: String },
    #[error("field {field:?} appears twice")]
    DuplicateField { field: String },
    #[error("field {field} is not a valid id (^[a-z0-9][a-z0-9._-]{{0,63}}$)")]
    InvalidId { field: &'static str },
    #[error("field {field} is {bytes} bytes, more than {max}")]
    FieldTooLong {
        field: &'static str,
        bytes: usize,
        max: usize,
    },
    #[error("field {field} has {items} items, more than {max}")]
    TooManyItems {
        field: &'static str,
        items: usize,
        max: usize,
    },
    #[error("field {field} names {value:?} twice")]
    DuplicateItem { field: &'static str, value: String },
    #[error("field {field} looks like personal data ({what}); use pseudonymous refs")]
    PersonalDataSuspected {
        field: &'static str,
        what: &'static str,
    },
    #[error("field {field} must be non-empty text without control characters")]
    InvalidText { field: &'static str },
    #[error("field {field} is not a valid verifier key (name+8hex+base64(0x01||pk))")]
    KeyInvalid { field: &'static str },
    #[error("unit {unit:?} is not supported; the ledger counts CNY-fen")]
    UnitUnsupported { unit: String },
    #[error("field {field} = {value} is out of range {min}..={max}")]
    ValueOutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("lessons {value} out of range 1..={max}")]
    LessonsOutOfRange { value: u64, max: u64 },
    #[error("price per lesson {value} fen out of range 1..={max}")]
    PriceOutOfRange { value: u64, max: u64 },
    #[error("grade {value} out of range 1..=12")]
    GradeOutOfRange { value: u64 },
    #[error("evidence digest must be 64 lowercase hex characters")]
    EvidenceDigestInvalid,

    #[error("entry names ledger {found:?}; this ledger is {expected:?}")]
    WrongLedger { expected: String, found: String },
    #[error("party id {party:?} is not an opaque {role} id ({pattern})")]
    PartyIdInvalid {
        role: &'static str,
        party: String,
        pattern: &'static str,
    },
    #[error(
        "key named {name:?} may not be registered for party {party}: a key's name is its party id"
    )]
    KeyNameMismatch { name: String, party: String },
    #[error("reason {reason} does not fit {kind}")]
    ReasonNotAllowed {
        reason: &'static str,
        kind: &'static str,
    },

    // --- genesis and idempotency ---
    #[error("the ledger has no genesis yet: entry {index} must be a genesis")]
    GenesisRequired { index: u64 },
    #[error("genesis must be entry 0, not entry {index}")]
    GenesisNotFirst { index: u64 },
    #[error("the ledger already has a genesis")]
    GenesisRepeated,
    #[error("entry id {id:?} was already recorded at entry {first_index} with this payload")]
    DuplicateEntry { id: String, first_index: u64 },
    #[error("entry id {id:?} was already used at entry {first_index} for another payload")]
    IdReused { id: String, first_index: u64 },

    // --- signatures and authority ---
    #[error("{count} signers, more than the cap of {max}")]
    TooManySigners { count: usize, max: usize },
    #[error("signer {key} appears twice")]
    DuplicateSigner { key: String },
    #[error("signer {key} is not a registered key")]
    SignerNotRegistered { key: String },
    #[error("key {key} was revoked at entry {revoked_at}")]
    KeyRevoked { key: String, revoked_at: u64 },
    #[error("missing signature of the {role}")]
    MissingSignature { role: String },
    #[error("signer {key} has no part in this entry")]
    UnexpectedSigner { key: String },
    #[error("{party} may not sign {kind}")]
    NotAuthorized { party: String, kind: &'static str },

    // --- parties and keys ---
    #[error("party {party} already exists")]
    PartyExists { party: String },
    #[error("party {party} is unknown")]
    PartyUnknown { party: String },
    #[error("party {party} is a {actual}, not a {expected}")]
    WrongRole {
        party: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("key {key} is already registered")]
    KeyInUse { key: String },
    #[error("a party of role {role} is declared by the genesis, not registered")]
    RoleNotRegistrable { role: &'static str },
    #[error("key {key} does not belong to party {party}")]
    KeyNotOfParty { key: String, party: String },

    // --- institutions ---
    #[error("institution {institution} is unknown")]
    InstitutionUnknown { institution: String },
    #[error("institution {institution} is not closed")]
    InstitutionNotClosed { institution: String },
    #[error("institution {institution} is closed")]
    InstitutionClosed { institution: String },
    #[error("institution {institution} is banned (black list, entry {banned_at})")]
    InstitutionBanned { institution: String, banned_at: u64 },
    #[error("institution {institution} is not on the white list")]
    InstitutionNotWhitelisted { institution: String },
    #[error("institution {institution} already has status {status}")]
    InstitutionStatusRepeated {
        institution: String,
        status: &'static str,
    },

    // --- claims ---
    #[error("claim {claim} already exists")]
    ClaimExists { claim: String },
    #[error("claim {claim} is unknown")]
    ClaimUnknown { claim: String },
    #[error("student {student} already holds {max} claims")]
    StudentClaimsFull { student: String, max: usize },
    #[error("subject {subject} is not one of the genesis subjects")]
    UnknownSubject { subject: String },
    #[error("district {district} is not one of the genesis districts")]
    UnknownDistrict { district: String },

    // --- claim preferences (`claim_preferences_set`) ---
    #[error("claim {claim} has no unreserved value left to redeem")]
    ClaimClosed { claim: String },
    #[error("preferred subject {subject} is not one of the genesis subjects")]
    PreferenceSubjectUnknown { subject: String },
    #[error("subject {subject} is listed twice")]
    PreferenceSubjectRepeated { subject: String },
    #[error("accepted district {district} is not one of the genesis districts")]
    PreferenceDistrictUnknown { district: String },
    #[error("district {district} is listed twice")]
    PreferenceDistrictRepeated { district: String },
    #[error("{items} subjects listed, at most {max}")]
    TooManySubjects { items: usize, max: usize },
    #[error("{items} accepted districts listed, at most {max}")]
    TooManyDistricts { items: usize, max: usize },
    #[error("{items} pledges requested, at most {max}")]
    TooManyRequests { items: usize, max: usize },
    #[error("pledge {pledge} is requested twice")]
    RequestRepeated { pledge: String },
    #[error("pledge {pledge} cannot be redeemed now: {why}")]
    PledgeNotEligible { pledge: String, why: &'static str },
    #[error(
        "the claim's grade {grade} is outside pledge {pledge}'s grades {grade_min}..={grade_max}"
    )]
    PledgeGradeMismatch {
        pledge: String,
        grade: u64,
        grade_min: u64,
        grade_max: u64,
    },
    #[error("pledge {pledge} teaches {subject}, which is not among the accepted subjects")]
    PledgeSubjectNotAccepted { pledge: String, subject: String },

    // --- pledges ---
    #[error("pledge {pledge} already exists")]
    PledgeExists { pledge: String },
    #[error("institution {institution} has {max} pledges awaiting approval already")]
    TooManyUnapprovedPledges { institution: String, max: u64 },
    #[error("pledge {pledge} is unknown")]
    PledgeUnknown { pledge: String },
    #[error("pledge {pledge} is not approved")]
    PledgeNotApproved { pledge: String },
    #[error("pledge {pledge} is already approved")]
    PledgeAlreadyApproved { pledge: String },
    #[error("pledge {pledge} is valid from {valid_from} until {valid_until}, not at {time}")]
    PledgeNotValidAtTime {
        pledge: String,
        time: u64,
        valid_from: u64,
        valid_until: u64,
    },
    #[error("grade band {grade_min}..={grade_max} is invalid")]
    GradeBandInvalid { grade_min: u64, grade_max: u64 },
    #[error("validity window {valid_from}..{valid_until} is invalid")]
    ValidityWindowInvalid { valid_from: u64, valid_until: u64 },
    #[error("a pledge names exactly one of a district or online = true")]
    LocationInvalid,
    #[error("withdrawing {requested} lessons exceeds the {available} available")]
    WithdrawExceedsAvailable { requested: u64, available: u64 },

    // --- allocations ---
    #[error("allocation {allocation} already exists")]
    AllocationExists { allocation: String },
    #[error("allocation {allocation} is unknown")]
    AllocationUnknown { allocation: String },
    #[error("pledge subject {pledge_subject} does not match claim subject {claim_subject}")]
    IncompatibleSubject {
        claim_subject: String,
        pledge_subject: String,
    },
    #[error("claim grade {grade} is outside the pledge band {grade_min}..={grade_max}")]
    IncompatibleGrade {
        grade: u64,
        grade_min: u64,
        grade_max: u64,
    },
    #[error("the pledge's location is not accepted by the claim")]
    IncompatibleLocation,
    #[error("{requested} lessons requested, {available} available on the pledge")]
    InsufficientCapacity { requested: u64, available: u64 },
    #[error("{requested} lessons exceed one seat of {per_seat} lessons")]
    AllocationExceedsSeat { requested: u64, per_seat: u64 },
    #[error("{needed} fen needed, {unreserved} fen unreserved on the claim")]
    InsufficientClaimValue { needed: u64, unreserved: u64 },
    #[error("allocation {allocation} is {status}, not active")]
    AllocationNotActive {
        allocation: String,
        status: &'static str,
    },
    #[error("allocation {allocation} expires at {expires_at}, not yet at {time}")]
    AllocationNotExpired {
        allocation: String,
        time: u64,
        expires_at: u64,
    },
    #[error("allocation {allocation} expired at {expires_at} (ledger time {time})")]
    AllocationPastExpiry {
        allocation: String,
        time: u64,
        expires_at: u64,
    },
    #[error("allocation {allocation} has no lesson left to consume")]
    AllocationExhausted { allocation: String },

    // --- match runs ---
    #[error("match run {run} is already recorded")]
    MatchRunExists { run: String },
    #[error("match run {run} is not recorded")]
    MatchRunUnknown { run: String },
    #[error("match run {run} declared {allocations} allocations, all already recorded")]
    MatchRunFull { run: String, allocations: u64 },
    #[error("a match run of {allocations} allocations exceeds the cap of {max}")]
    MatchRunTooLarge { allocations: u64, max: u64 },
    #[error("match parameters invalid: {detail}")]
    MatchParamsInvalid { detail: String },
    #[error("plans digest must be 64 lowercase hex characters")]
    PlansDigestInvalid,
    #[error("match date {at} is after the entry's ledger time {time}")]
    MatchRunInFuture { at: u64, time: u64 },
    #[error("match run {run} was closed before all its allocations were recorded")]
    MatchRunClosed { run: String },
    #[error("match run {run} has all its allocations; there is nothing to close")]
    MatchRunComplete { run: String },
    #[error("match run {run}: the next allocation must be {expected}, not {found}")]
    MatchRunOutOfOrder {
        run: String,
        expected: String,
        found: String,
    },

    // --- ledger time attested by the associations ---
    #[error("attested time {at} is after the entry's ledger time {time}")]
    TimeAttestedInFuture { at: u64, time: u64 },
    #[error("attested time {at} is not after the latest attested time {latest}")]
    TimeAttestedBackwards { at: u64, latest: u64 },
    #[error("{what} ends at {deadline}; the associations have attested only {attested}")]
    DeadlineNotAttested {
        what: &'static str,
        deadline: u64,
        attested: u64,
    },

    // --- lessons and disputes ---
    #[error("lesson {lesson} already exists")]
    LessonExists { lesson: String },
    #[error("lesson {lesson} is unknown")]
    LessonUnknown { lesson: String },
    #[error("lesson {lesson} is {status}, not pending")]
    LessonNotPending {
        lesson: String,
        status: &'static str,
    },
    #[error("the confirmation window ends at {window_end}, not yet at {time}")]
    WindowNotElapsed { time: u64, window_end: u64 },
    #[error("the confirmation window ended at {window_end} (ledger time {time})")]
    WindowElapsed { time: u64, window_end: u64 },
    #[error("dispute {dispute} already exists")]
    DisputeExists { dispute: String },
    #[error("dispute {dispute} is unknown")]
    DisputeUnknown { dispute: String },
    #[error("dispute {dispute} is not open")]
    DisputeNotOpen { dispute: String },

    #[error("payload type {found:?} is not {}", super::PAYLOAD_TYPE)]
    PayloadTypeUnsupported { found: String },

    // --- arithmetic and state ---
    #[error("arithmetic overflow computing {what}")]
    Overflow { what: &'static str },
    #[error("arithmetic underflow computing {what}")]
    Underflow { what: &'static str },
    #[error("stored state is inconsistent: {detail}")]
    StateCorrupt { detail: String },
    #[error("state store unavailable: {detail}")]
    StateUnavailable { detail: String },
    #[error("party {party} has signed its {max} entries of quota day {day}")]
    PartyQuotaExceeded { party: String, day: u64, max: u64 },
    #[error("party {party} has made its {max} key changes of quota day {day}")]
    KeyChangesExceeded { party: String, day: u64, max: u64 },
    #[error(
        "the operator's key is not recovered this way: it rotates (signed by old and new key)"
    )]
    OperatorKeyNotRecoverable,
    /// A balance identity would break: a bug of the rules, never the entry's fault.
    #[error("internal error: a balance identity would break ({detail}); the entry is refused")]
    InvariantViolated { detail: String },
}

impl RuleError {
    /// The stable snake_case code naming the rule broken.
    #[must_use]
    pub fn code(&self) -> &'static str {
        use RuleError as E;
        match self {
            E::PayloadTooLarge { .. } => "payload_too_large",
            E::MalformedPayload { .. } => "malformed_payload",
            E::UnknownKind { .. } => "unknown_kind",
            E::UnknownField { .. } => "unknown_field",
            E::MissingField { .. } => "missing_field",
            E::DuplicateField { .. } => "duplicate_field",
            E::InvalidId { .. } => "invalid_id",
            E::FieldTooLong { .. } => "field_too_long",
            E::TooManyItems { .. } => "too_many_items",
            E::DuplicateItem { .. } => "duplicate_item",
            E::PersonalDataSuspected { .. } => "personal_data_suspected",
            E::InvalidText { .. } => "invalid_text",
            E::KeyInvalid { .. } => "key_invalid",
            E::UnitUnsupported { .. } => "unit_unsupported",
            E::ValueOutOfRange { .. } => "value_out_of_range",
            E::LessonsOutOfRange { .. } => "lessons_out_of_range",
            E::PriceOutOfRange { .. } => "price_out_of_range",
            E::GradeOutOfRange { .. } => "grade_out_of_range",
            E::EvidenceDigestInvalid => "evidence_digest_invalid",
            E::WrongLedger { .. } => "wrong_ledger",
            E::PartyIdInvalid { .. } => "party_id_invalid",
            E::KeyNameMismatch { .. } => "key_name_mismatch",
            E::ReasonNotAllowed { .. } => "reason_not_allowed",
            E::RoleNotRegistrable { .. } => "role_not_registrable",
            E::GenesisRequired { .. } => "genesis_required",
            E::GenesisNotFirst { .. } => "genesis_not_first",
            E::GenesisRepeated => "genesis_repeated",
            E::DuplicateEntry { .. } => "duplicate_entry",
            E::IdReused { .. } => "id_reused",
            E::TooManySigners { .. } => "too_many_signers",
            E::DuplicateSigner { .. } => "duplicate_signer",
            E::SignerNotRegistered { .. } => "signer_not_registered",
            E::KeyRevoked { .. } => "key_revoked",
            E::MissingSignature { .. } => "missing_signature",
            E::UnexpectedSigner { .. } => "unexpected_signer",
            E::NotAuthorized { .. } => "not_authorized",
            E::PartyExists { .. } => "party_exists",
            E::PartyUnknown { .. } => "party_unknown",
            E::WrongRole { .. } => "wrong_role",
            E::KeyInUse { .. } => "key_in_use",
            E::KeyNotOfParty { .. } => "key_not_of_party",
            E::InstitutionUnknown { .. } => "institution_unknown",
            E::InstitutionNotClosed { .. } => "institution_not_closed",
            E::InstitutionClosed { .. } => "institution_closed",
            E::InstitutionBanned { .. } => "institution_banned",
            E::InstitutionNotWhitelisted { .. } => "institution_not_whitelisted",
            E::InstitutionStatusRepeated { .. } => "institution_status_repeated",
            E::ClaimExists { .. } => "claim_exists",
            E::ClaimUnknown { .. } => "claim_unknown",
            E::StudentClaimsFull { .. } => "student_claims_full",
            E::UnknownSubject { .. } => "unknown_subject",
            E::UnknownDistrict { .. } => "unknown_district",
            E::ClaimClosed { .. } => "claim_closed",
            E::PreferenceSubjectUnknown { .. } => "subject_unknown",
            E::PreferenceSubjectRepeated { .. } => "subject_repeated",
            E::PreferenceDistrictUnknown { .. } => "district_unknown",
            E::PreferenceDistrictRepeated { .. } => "district_repeated",
            E::TooManySubjects { .. } => "too_many_subjects",
            E::TooManyDistricts { .. } => "too_many_districts",
            E::TooManyRequests { .. } => "too_many_requests",
            E::RequestRepeated { .. } => "request_repeated",
            E::PledgeNotEligible { .. } => "pledge_not_eligible",
            E::PledgeGradeMismatch { .. } => "pledge_grade_mismatch",
            E::PledgeSubjectNotAccepted { .. } => "pledge_subject_not_accepted",
            E::PledgeExists { .. } => "pledge_exists",
            E::TooManyUnapprovedPledges { .. } => "too_many_unapproved_pledges",
            E::PledgeUnknown { .. } => "pledge_unknown",
            E::PledgeNotApproved { .. } => "pledge_not_approved",
            E::PledgeAlreadyApproved { .. } => "pledge_already_approved",
            E::PledgeNotValidAtTime { .. } => "pledge_not_valid_at_time",
            E::GradeBandInvalid { .. } => "grade_band_invalid",
            E::ValidityWindowInvalid { .. } => "validity_window_invalid",
            E::LocationInvalid => "location_invalid",
            E::WithdrawExceedsAvailable { .. } => "withdraw_exceeds_available",
            E::AllocationExists { .. } => "allocation_exists",
            E::AllocationUnknown { .. } => "allocation_unknown",
            E::IncompatibleSubject { .. } => "incompatible_subject",
            E::IncompatibleGrade { .. } => "incompatible_grade",
            E::IncompatibleLocation => "incompatible_location",
            E::InsufficientCapacity { .. } => "insufficient_capacity",
            E::AllocationExceedsSeat { .. } => "allocation_exceeds_seat",
            E::InsufficientClaimValue { .. } => "insufficient_claim_value",
            E::AllocationNotActive { .. } => "allocation_not_active",
            E::AllocationNotExpired { .. } => "allocation_not_expired",
            E::AllocationPastExpiry { .. } => "allocation_past_expiry",
            E::AllocationExhausted { .. } => "allocation_exhausted",
            E::MatchRunExists { .. } => "match_run_exists",
            E::MatchRunUnknown { .. } => "match_run_unknown",
            E::MatchRunFull { .. } => "match_run_full",
            E::MatchRunTooLarge { .. } => "match_run_too_large",
            E::MatchParamsInvalid { .. } => "match_params_invalid",
            E::PlansDigestInvalid => "plans_digest_invalid",
            E::MatchRunInFuture { .. } => "match_run_in_future",
            E::MatchRunClosed { .. } => "match_run_closed",
            E::MatchRunComplete { .. } => "match_run_complete",
            E::MatchRunOutOfOrder { .. } => "match_run_out_of_order",
            E::TimeAttestedInFuture { .. } => "time_attested_in_future",
            E::TimeAttestedBackwards { .. } => "time_attested_backwards",
            E::DeadlineNotAttested { .. } => "deadline_not_attested",
            E::LessonExists { .. } => "lesson_exists",
            E::LessonUnknown { .. } => "lesson_unknown",
            E::LessonNotPending { .. } => "lesson_not_pending",
            E::WindowNotElapsed { .. } => "window_not_elapsed",
            E::WindowElapsed { .. } => "window_elapsed",
            E::DisputeExists { .. } => "dispute_exists",
            E::DisputeUnknown { .. } => "dispute_unknown",
            E::DisputeNotOpen { .. } => "dispute_not_open",
            E::Overflow { .. } => "overflow",
            E::Underflow { .. } => "underflow",
            E::StateCorrupt { .. } => "state_corrupt",
            E::StateUnavailable { .. } => "state_unavailable",
            E::InvariantViolated { .. } => "invariant_violated",
            E::PartyQuotaExceeded { .. } => "party_quota_exceeded",
            E::KeyChangesExceeded { .. } => "key_changes_exceeded",
            E::OperatorKeyNotRecoverable => "operator_key_not_recoverable",
            E::PayloadTypeUnsupported { .. } => "payload_type_unsupported",
        }
    }
}
