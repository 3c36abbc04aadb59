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
    /// Code `payload_too_large`: payload of `bytes` bytes exceeds the cap of `max`.
    #[error("payload of {bytes} bytes exceeds the cap of {max}")]
    PayloadTooLarge {
        /// Its size, in bytes.
        bytes: usize,
        /// The cap, `PAYLOAD_BYTES_MAX` bytes.
        max: usize,
    },
    /// Code `malformed_payload`: malformed payload: `detail`.
    #[error("malformed payload: {detail}")]
    MalformedPayload {
        /// What exactly was wrong, in words (for people; the code is for programs).
        detail: String,
    },
    /// Code `unknown_kind`: unknown entry kind `kind`.
    #[error("unknown entry kind {kind:?}")]
    UnknownKind {
        /// The `kind` given.
        kind: String,
    },
    /// Code `unknown_field`: unknown field `field` for kind `kind`.
    #[error("unknown field {field:?} for kind {kind}")]
    UnknownField {
        /// The entry kind, as the payload's `kind` spells it.
        kind: String,
        /// The field name.
        field: String,
    },
    /// Code `missing_field`: missing field `field` for kind `kind`.
    #[error("missing field {field:?} for kind {kind}")]
    MissingField {
        /// The entry kind, as the payload's `kind` spells it.
        kind: String,
        /// The field name.
        field: String,
    },
    /// Code `duplicate_field`: field `field` appears twice.
    #[error("field {field:?} appears twice")]
    DuplicateField {
        /// The field name.
        field: String,
    },
    /// Code `invalid_id`: field `field` is not a valid id (`^[a-z0-9][a-z0-9._-]{0,63}$`).
    #[error("field {field} is not a valid id (^[a-z0-9][a-z0-9._-]{{0,63}}$)")]
    InvalidId {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
    },
    /// Code `field_too_long`: field `field` is `bytes` bytes, more than `max`.
    #[error("field {field} is {bytes} bytes, more than {max}")]
    FieldTooLong {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
        /// Its size, in bytes.
        bytes: usize,
        /// Most bytes the field may hold.
        max: usize,
    },
    /// Code `too_many_items`: field `field` has `items` items, more than `max`.
    #[error("field {field} has {items} items, more than {max}")]
    TooManyItems {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
        /// How many items the list holds.
        items: usize,
        /// Most items the list may hold.
        max: usize,
    },
    /// Code `duplicate_item`: field `field` names `value` twice.
    #[error("field {field} names {value:?} twice")]
    DuplicateItem {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
        /// The item named twice.
        value: String,
    },
    /// Code `personal_data_suspected`: field `field` looks like personal data (`what`); use pseudonymous refs.
    #[error("field {field} looks like personal data ({what}); use pseudonymous refs")]
    PersonalDataSuspected {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
        /// What it looks like (a phone number, an e-mail address, …).
        what: &'static str,
    },
    /// Code `invalid_text`: field `field` must be non-empty text without control characters.
    #[error("field {field} must be non-empty text without control characters")]
    InvalidText {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
    },
    /// Code `key_invalid`: field `field` is not a valid verifier key (name+8hex+base64(0x01||pk)).
    #[error("field {field} is not a valid verifier key (name+8hex+base64(0x01||pk))")]
    KeyInvalid {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
    },
    /// Code `unit_unsupported`: unit `unit` is not supported; the ledger counts CNY-fen.
    #[error("unit {unit:?} is not supported; the ledger counts CNY-fen")]
    UnitUnsupported {
        /// The unit the payload named.
        unit: String,
    },
    /// Code `value_out_of_range`: field `field` = `value` is out of range `min`..=`max`.
    #[error("field {field} = {value} is out of range {min}..={max}")]
    ValueOutOfRange {
        /// Name of the payload field, as in the entry schema.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Lowest value allowed.
        min: u64,
        /// Highest value allowed.
        max: u64,
    },
    /// Code `lessons_out_of_range`: lessons `value` out of range 1..=`max`.
    #[error("lessons {value} out of range 1..={max}")]
    LessonsOutOfRange {
        /// The number of lessons given.
        value: u64,
        /// Most lessons allowed.
        max: u64,
    },
    /// Code `price_out_of_range`: price per lesson `value` fen out of range 1..=`max`.
    #[error("price per lesson {value} fen out of range 1..={max}")]
    PriceOutOfRange {
        /// The price per lesson given, in fen (CNY cents).
        value: u64,
        /// Highest price per lesson, in fen.
        max: u64,
    },
    /// Code `grade_out_of_range`: grade `value` out of range 1..=12.
    #[error("grade {value} out of range 1..=12")]
    GradeOutOfRange {
        /// The grade given.
        value: u64,
    },
    /// Code `evidence_digest_invalid`: evidence digest must be 64 lowercase hex characters.
    #[error("evidence digest must be 64 lowercase hex characters")]
    EvidenceDigestInvalid,

    /// Code `wrong_ledger`: entry names ledger `found`; this ledger is `expected`.
    #[error("entry names ledger {found:?}; this ledger is {expected:?}")]
    WrongLedger {
        /// This ledger's origin.
        expected: String,
        /// The origin the entry names in `ledger`.
        found: String,
    },
    /// Code `party_id_invalid`: party id `party` is not an opaque `role` id (`pattern`).
    #[error("party id {party:?} is not an opaque {role} id ({pattern})")]
    PartyIdInvalid {
        /// The role the id was given for.
        role: &'static str,
        /// The id given.
        party: String,
        /// The pattern an id of that role must match.
        pattern: &'static str,
    },
    /// Code `key_name_mismatch`: key named `name` may not be registered for party `party`: a key's name is its party id.
    #[error(
        "key named {name:?} may not be registered for party {party}: a key's name is its party id"
    )]
    KeyNameMismatch {
        /// The name in the verifier key.
        name: String,
        /// Id of the party.
        party: String,
    },
    /// Code `reason_not_allowed`: reason `reason` does not fit `kind`.
    #[error("reason {reason} does not fit {kind}")]
    ReasonNotAllowed {
        /// The reason given, as the schema spells it.
        reason: &'static str,
        /// The entry kind.
        kind: &'static str,
    },

    // --- genesis and idempotency ---
    /// Code `genesis_required`: the ledger has no genesis yet: entry `index` must be a genesis.
    #[error("the ledger has no genesis yet: entry {index} must be a genesis")]
    GenesisRequired {
        /// Index the entry would have had.
        index: u64,
    },
    /// Code `genesis_not_first`: genesis must be entry 0, not entry `index`.
    #[error("genesis must be entry 0, not entry {index}")]
    GenesisNotFirst {
        /// Index the genesis would have had.
        index: u64,
    },
    /// Code `genesis_repeated`: the ledger already has a genesis.
    #[error("the ledger already has a genesis")]
    GenesisRepeated,
    /// Code `duplicate_entry`: entry id `id` was already recorded at entry `first_index` with this payload.
    #[error("entry id {id:?} was already recorded at entry {first_index} with this payload")]
    DuplicateEntry {
        /// The entry's `id` (scoped by its author).
        id: String,
        /// Index in the log of the entry that first used the id.
        first_index: u64,
    },
    /// Code `id_reused`: entry id `id` was already used at entry `first_index` for another payload.
    #[error("entry id {id:?} was already used at entry {first_index} for another payload")]
    IdReused {
        /// The entry's `id` (scoped by its author).
        id: String,
        /// Index in the log of the entry that first used the id.
        first_index: u64,
    },

    // --- signatures and authority ---
    /// Code `too_many_signers`: `count` signers, more than the cap of `max`.
    #[error("{count} signers, more than the cap of {max}")]
    TooManySigners {
        /// Number of signatures on the entry.
        count: usize,
        /// Most signatures an entry may carry.
        max: usize,
    },
    /// Code `duplicate_signer`: signer `key` appears twice.
    #[error("signer {key} appears twice")]
    DuplicateSigner {
        /// Key id of the verifier key (name, hash and key, C2SP form).
        key: String,
    },
    /// Code `signer_not_registered`: signer `key` is not a registered key.
    #[error("signer {key} is not a registered key")]
    SignerNotRegistered {
        /// Key id of the verifier key (name, hash and key, C2SP form).
        key: String,
    },
    /// Code `key_revoked`: key `key` was revoked at entry `revoked_at`.
    #[error("key {key} was revoked at entry {revoked_at}")]
    KeyRevoked {
        /// Key id of the verifier key (name, hash and key, C2SP form).
        key: String,
        /// Index of the entry that revoked the key.
        revoked_at: u64,
    },
    /// Code `missing_signature`: missing signature of the `role`.
    #[error("missing signature of the {role}")]
    MissingSignature {
        /// Whose signature is missing (a role, or a party id).
        role: String,
    },
    /// Code `unexpected_signer`: signer `key` has no part in this entry.
    #[error("signer {key} has no part in this entry")]
    UnexpectedSigner {
        /// Key id of the verifier key (name, hash and key, C2SP form).
        key: String,
    },
    /// Code `not_authorized`: `party` may not sign `kind`.
    #[error("{party} may not sign {kind}")]
    NotAuthorized {
        /// Id of the signing party.
        party: String,
        /// The entry kind.
        kind: &'static str,
    },

    // --- parties and keys ---
    /// Code `party_exists`: party `party` already exists.
    #[error("party {party} already exists")]
    PartyExists {
        /// Id of the party.
        party: String,
    },
    /// Code `party_unknown`: party `party` is unknown.
    #[error("party {party} is unknown")]
    PartyUnknown {
        /// Id of the party.
        party: String,
    },
    /// Code `wrong_role`: party `party` is a `actual`, not a `expected`.
    #[error("party {party} is a {actual}, not a {expected}")]
    WrongRole {
        /// Id of the party.
        party: String,
        /// The role the entry needs.
        expected: &'static str,
        /// The role the party has.
        actual: &'static str,
    },
    /// Code `key_in_use`: key `key` is already registered.
    #[error("key {key} is already registered")]
    KeyInUse {
        /// Key id of the verifier key (name, hash and key, C2SP form).
        key: String,
    },
    /// Code `role_not_registrable`: a party of role `role` is declared by the genesis, not registered.
    #[error("a party of role {role} is declared by the genesis, not registered")]
    RoleNotRegistrable {
        /// The role asked for.
        role: &'static str,
    },
    /// Code `key_not_of_party`: key `key` does not belong to party `party`.
    #[error("key {key} does not belong to party {party}")]
    KeyNotOfParty {
        /// Key id of the verifier key (name, hash and key, C2SP form).
        key: String,
        /// Id of the party the entry names.
        party: String,
    },

    // --- institutions ---
    /// Code `institution_unknown`: institution `institution` is unknown.
    #[error("institution {institution} is unknown")]
    InstitutionUnknown {
        /// Id of the institution (a party).
        institution: String,
    },
    /// Code `institution_not_closed`: institution `institution` is not closed.
    #[error("institution {institution} is not closed")]
    InstitutionNotClosed {
        /// Id of the institution (a party).
        institution: String,
    },
    /// Code `institution_closed`: institution `institution` is closed.
    #[error("institution {institution} is closed")]
    InstitutionClosed {
        /// Id of the institution (a party).
        institution: String,
    },
    /// Code `institution_banned`: institution `institution` is banned (black list, entry `banned_at`).
    #[error("institution {institution} is banned (black list, entry {banned_at})")]
    InstitutionBanned {
        /// Id of the institution (a party).
        institution: String,
        /// Index of the entry that put the institution on the black list.
        banned_at: u64,
    },
    /// Code `institution_not_whitelisted`: institution `institution` is not on the white list.
    #[error("institution {institution} is not on the white list")]
    InstitutionNotWhitelisted {
        /// Id of the institution (a party).
        institution: String,
    },
    /// Code `institution_status_repeated`: institution `institution` already has status `status`.
    #[error("institution {institution} already has status {status}")]
    InstitutionStatusRepeated {
        /// Id of the institution (a party).
        institution: String,
        /// The status asked for (`closed`, `whitelisted`, `banned`).
        status: &'static str,
    },

    // --- claims ---
    /// Code `claim_exists`: claim `claim` already exists.
    #[error("claim {claim} already exists")]
    ClaimExists {
        /// Id of the claim.
        claim: String,
    },
    /// Code `claim_unknown`: claim `claim` is unknown.
    #[error("claim {claim} is unknown")]
    ClaimUnknown {
        /// Id of the claim.
        claim: String,
    },
    /// Code `student_claims_full`: student `student` already holds `max` claims.
    #[error("student {student} already holds {max} claims")]
    StudentClaimsFull {
        /// Pseudonymous id of the student.
        student: String,
        /// Most claims a student may hold.
        max: usize,
    },
    /// Code `unknown_subject`: subject `subject` is not one of the genesis subjects.
    #[error("subject {subject} is not one of the genesis subjects")]
    UnknownSubject {
        /// The subject, as the genesis names it.
        subject: String,
    },
    /// Code `unknown_district`: district `district` is not one of the genesis districts.
    #[error("district {district} is not one of the genesis districts")]
    UnknownDistrict {
        /// The district, as the genesis names it.
        district: String,
    },

    // --- claim preferences (`claim_preferences_set`) ---
    /// Code `claim_closed`: claim `claim` has no unreserved value left to redeem.
    #[error("claim {claim} has no unreserved value left to redeem")]
    ClaimClosed {
        /// Id of the claim.
        claim: String,
    },
    /// Code `subject_unknown`: preferred subject `subject` is not one of the genesis subjects.
    #[error("preferred subject {subject} is not one of the genesis subjects")]
    PreferenceSubjectUnknown {
        /// The subject, as the genesis names it.
        subject: String,
    },
    /// Code `subject_repeated`: subject `subject` is listed twice.
    #[error("subject {subject} is listed twice")]
    PreferenceSubjectRepeated {
        /// The subject, as the genesis names it.
        subject: String,
    },
    /// Code `district_unknown`: accepted district `district` is not one of the genesis districts.
    #[error("accepted district {district} is not one of the genesis districts")]
    PreferenceDistrictUnknown {
        /// The district, as the genesis names it.
        district: String,
    },
    /// Code `district_repeated`: district `district` is listed twice.
    #[error("district {district} is listed twice")]
    PreferenceDistrictRepeated {
        /// The district, as the genesis names it.
        district: String,
    },
    /// Code `too_many_subjects`: `items` subjects listed, at most `max`.
    #[error("{items} subjects listed, at most {max}")]
    TooManySubjects {
        /// Subjects listed.
        items: usize,
        /// Most subjects a claim may list.
        max: usize,
    },
    /// Code `too_many_districts`: `items` accepted districts listed, at most `max`.
    #[error("{items} accepted districts listed, at most {max}")]
    TooManyDistricts {
        /// Districts listed.
        items: usize,
        /// Most districts a claim may list.
        max: usize,
    },
    /// Code `too_many_requests`: `items` pledges requested, at most `max`.
    #[error("{items} pledges requested, at most {max}")]
    TooManyRequests {
        /// Pledges requested.
        items: usize,
        /// Most pledges a claim may request.
        max: usize,
    },
    /// Code `request_repeated`: pledge `pledge` is requested twice.
    #[error("pledge {pledge} is requested twice")]
    RequestRepeated {
        /// Id of the pledge.
        pledge: String,
    },
    /// Code `pledge_not_eligible`: pledge `pledge` cannot be redeemed now: `why`.
    #[error("pledge {pledge} cannot be redeemed now: {why}")]
    PledgeNotEligible {
        /// Id of the pledge.
        pledge: String,
        /// Which condition the pledge fails (not approved, out of validity, no lesson left, …).
        why: &'static str,
    },
    /// Code `pledge_grade_mismatch`: the claim's grade `grade` is outside pledge `pledge`'s grades `grade_min`..=`grade_max`.
    #[error(
        "the claim's grade {grade} is outside pledge {pledge}'s grades {grade_min}..={grade_max}"
    )]
    PledgeGradeMismatch {
        /// Id of the pledge.
        pledge: String,
        /// The claim's grade (1 to 12).
        grade: u64,
        /// Lowest grade the pledge teaches (1 to 12).
        grade_min: u64,
        /// Highest grade the pledge teaches (1 to 12).
        grade_max: u64,
    },
    /// Code `pledge_subject_not_accepted`: pledge `pledge` teaches `subject`, which is not among the accepted subjects.
    #[error("pledge {pledge} teaches {subject}, which is not among the accepted subjects")]
    PledgeSubjectNotAccepted {
        /// Id of the pledge.
        pledge: String,
        /// The pledge's subject.
        subject: String,
    },

    // --- pledges ---
    /// Code `pledge_exists`: pledge `pledge` already exists.
    #[error("pledge {pledge} already exists")]
    PledgeExists {
        /// Id of the pledge.
        pledge: String,
    },
    /// Code `too_many_unapproved_pledges`: institution `institution` has `max` pledges awaiting approval already.
    #[error("institution {institution} has {max} pledges awaiting approval already")]
    TooManyUnapprovedPledges {
        /// Id of the institution (a party).
        institution: String,
        /// Most pledges an institution may have awaiting approval.
        max: u64,
    },
    /// Code `pledge_unknown`: pledge `pledge` is unknown.
    #[error("pledge {pledge} is unknown")]
    PledgeUnknown {
        /// Id of the pledge.
        pledge: String,
    },
    /// Code `pledge_not_approved`: pledge `pledge` is not approved.
    #[error("pledge {pledge} is not approved")]
    PledgeNotApproved {
        /// Id of the pledge.
        pledge: String,
    },
    /// Code `pledge_already_approved`: pledge `pledge` is already approved.
    #[error("pledge {pledge} is already approved")]
    PledgeAlreadyApproved {
        /// Id of the pledge.
        pledge: String,
    },
    /// Code `pledge_not_valid_at_time`: pledge `pledge` is valid from `valid_from` until `valid_until`, not at `time`.
    #[error("pledge {pledge} is valid from {valid_from} until {valid_until}, not at {time}")]
    PledgeNotValidAtTime {
        /// Id of the pledge.
        pledge: String,
        /// The time it was asked for at, in micros since the Unix epoch.
        time: u64,
        /// Start of the pledge's validity, in micros since the Unix epoch.
        valid_from: u64,
        /// End of the pledge's validity (excluded), in micros since the Unix epoch.
        valid_until: u64,
    },
    /// Code `grade_band_invalid`: grade band `grade_min`..=`grade_max` is invalid.
    #[error("grade band {grade_min}..={grade_max} is invalid")]
    GradeBandInvalid {
        /// Lowest grade the pledge teaches (1 to 12).
        grade_min: u64,
        /// Highest grade the pledge teaches (1 to 12).
        grade_max: u64,
    },
    /// Code `validity_window_invalid`: validity window `valid_from`..`valid_until` is invalid.
    #[error("validity window {valid_from}..{valid_until} is invalid")]
    ValidityWindowInvalid {
        /// Start of the pledge's validity, in micros since the Unix epoch.
        valid_from: u64,
        /// End of the pledge's validity (excluded), in micros since the Unix epoch.
        valid_until: u64,
    },
    /// Code `location_invalid`: a pledge names exactly one of a district or online = true.
    #[error("a pledge names exactly one of a district or online = true")]
    LocationInvalid,
    /// Code `withdraw_exceeds_available`: withdrawing `requested` lessons exceeds the `available` available.
    #[error("withdrawing {requested} lessons exceeds the {available} available")]
    WithdrawExceedsAvailable {
        /// Lessons asked for.
        requested: u64,
        /// Lessons of the pledge not yet allocated.
        available: u64,
    },

    // --- allocations ---
    /// Code `allocation_exists`: allocation `allocation` already exists.
    #[error("allocation {allocation} already exists")]
    AllocationExists {
        /// Id of the allocation.
        allocation: String,
    },
    /// Code `allocation_unknown`: allocation `allocation` is unknown.
    #[error("allocation {allocation} is unknown")]
    AllocationUnknown {
        /// Id of the allocation.
        allocation: String,
    },
    /// Code `incompatible_subject`: pledge subject `pledge_subject` does not match claim subject `claim_subject`.
    #[error("pledge subject {pledge_subject} does not match claim subject {claim_subject}")]
    IncompatibleSubject {
        /// The claim's subject.
        claim_subject: String,
        /// The pledge's subject.
        pledge_subject: String,
    },
    /// Code `incompatible_grade`: claim grade `grade` is outside the pledge band `grade_min`..=`grade_max`.
    #[error("claim grade {grade} is outside the pledge band {grade_min}..={grade_max}")]
    IncompatibleGrade {
        /// The claim's grade (1 to 12).
        grade: u64,
        /// Lowest grade the pledge teaches (1 to 12).
        grade_min: u64,
        /// Highest grade the pledge teaches (1 to 12).
        grade_max: u64,
    },
    /// Code `incompatible_location`: the pledge's location is not accepted by the claim.
    #[error("the pledge's location is not accepted by the claim")]
    IncompatibleLocation,
    /// Code `insufficient_capacity`: `requested` lessons requested, `available` available on the pledge.
    #[error("{requested} lessons requested, {available} available on the pledge")]
    InsufficientCapacity {
        /// Lessons asked for.
        requested: u64,
        /// Lessons of the pledge not yet allocated.
        available: u64,
    },
    /// Code `allocation_exceeds_seat`: `requested` lessons exceed one seat of `per_seat` lessons.
    #[error("{requested} lessons exceed one seat of {per_seat} lessons")]
    AllocationExceedsSeat {
        /// Lessons the allocation asks for.
        requested: u64,
        /// Lessons in one seat of the pledge.
        per_seat: u64,
    },
    /// Code `insufficient_claim_value`: `needed` fen needed, `unreserved` fen unreserved on the claim.
    #[error("{needed} fen needed, {unreserved} fen unreserved on the claim")]
    InsufficientClaimValue {
        /// Value the allocation would reserve (lessons × price per lesson), in fen (CNY cents).
        needed: u64,
        /// Value of the claim not yet reserved by an allocation, in fen (CNY cents).
        unreserved: u64,
    },
    /// Code `claim_allocations_full`: claim `claim` already has `max` open allocations.
    #[error("claim {claim} already has {max} open allocations")]
    ClaimAllocationsFull {
        /// Id of the claim.
        claim: String,
        /// Most open allocations a claim may have (`CLAIM_ALLOCATIONS_OPEN_MAX`).
        max: usize,
    },
    /// Code `allocation_not_active`: allocation `allocation` is `status`, not active.
    #[error("allocation {allocation} is {status}, not active")]
    AllocationNotActive {
        /// Id of the allocation.
        allocation: String,
        /// The status it has (`expired`, `ended`, …).
        status: &'static str,
    },
    /// Code `allocation_not_expired`: allocation `allocation` expires at `expires_at`, not yet at `time`.
    #[error("allocation {allocation} expires at {expires_at}, not yet at {time}")]
    AllocationNotExpired {
        /// Id of the allocation.
        allocation: String,
        /// The entry's ledger time, in micros since the Unix epoch.
        time: u64,
        /// When the allocation expires, in micros since the Unix epoch.
        expires_at: u64,
    },
    /// Code `allocation_past_expiry`: allocation `allocation` expired at `expires_at` (ledger time `time`).
    #[error("allocation {allocation} expired at {expires_at} (ledger time {time})")]
    AllocationPastExpiry {
        /// Id of the allocation.
        allocation: String,
        /// The entry's ledger time, in micros since the Unix epoch.
        time: u64,
        /// When the allocation expires, in micros since the Unix epoch.
        expires_at: u64,
    },
    /// Code `allocation_exhausted`: allocation `allocation` has no lesson left to consume.
    #[error("allocation {allocation} has no lesson left to consume")]
    AllocationExhausted {
        /// Id of the allocation.
        allocation: String,
    },

    // --- match runs ---
    /// Code `match_run_exists`: match run `run` is already recorded.
    #[error("match run {run} is already recorded")]
    MatchRunExists {
        /// Id of the match run.
        run: String,
    },
    /// Code `match_run_unknown`: match run `run` is not recorded.
    #[error("match run {run} is not recorded")]
    MatchRunUnknown {
        /// Id of the match run.
        run: String,
    },
    /// Code `match_run_full`: match run `run` declared `allocations` allocations, all already recorded.
    #[error("match run {run} declared {allocations} allocations, all already recorded")]
    MatchRunFull {
        /// Id of the match run.
        run: String,
        /// Number of allocations the run declared.
        allocations: u64,
    },
    /// Code `match_run_too_large`: a match run of `allocations` allocations exceeds the cap of `max`.
    #[error("a match run of {allocations} allocations exceeds the cap of {max}")]
    MatchRunTooLarge {
        /// Allocations the run declares.
        allocations: u64,
        /// Most allocations a run may declare.
        max: u64,
    },
    /// Code `match_params_invalid`: match parameters invalid: `detail`.
    #[error("match parameters invalid: {detail}")]
    MatchParamsInvalid {
        /// What exactly was wrong, in words (for people; the code is for programs).
        detail: String,
    },
    /// Code `plans_digest_invalid`: plans digest must be 64 lowercase hex characters.
    #[error("plans digest must be 64 lowercase hex characters")]
    PlansDigestInvalid,
    /// Code `match_run_in_future`: match date `at` is after the entry's ledger time `time`.
    #[error("match date {at} is after the entry's ledger time {time}")]
    MatchRunInFuture {
        /// The run's match date, in micros since the Unix epoch.
        at: u64,
        /// The entry's ledger time, in micros since the Unix epoch.
        time: u64,
    },
    /// Code `match_run_closed`: match run `run` was closed before all its allocations were recorded.
    #[error("match run {run} was closed before all its allocations were recorded")]
    MatchRunClosed {
        /// Id of the match run.
        run: String,
    },
    /// Code `match_run_complete`: match run `run` has all its allocations; there is nothing to close.
    #[error("match run {run} has all its allocations; there is nothing to close")]
    MatchRunComplete {
        /// Id of the match run.
        run: String,
    },
    /// Code `match_run_out_of_order`: match run `run`: the next allocation must be `expected`, not `found`.
    #[error("match run {run}: the next allocation must be {expected}, not {found}")]
    MatchRunOutOfOrder {
        /// Id of the match run.
        run: String,
        /// Id of the allocation due next (`RUN.i`).
        expected: String,
        /// Id of the allocation given.
        found: String,
    },

    // --- ledger time attested by the associations ---
    /// Code `time_attested_in_future`: attested time `at` is after the entry's ledger time `time`.
    #[error("attested time {at} is after the entry's ledger time {time}")]
    TimeAttestedInFuture {
        /// The time attested, in micros since the Unix epoch.
        at: u64,
        /// The entry's ledger time, in micros since the Unix epoch.
        time: u64,
    },
    /// Code `time_attested_backwards`: attested time `at` is not after the latest attested time `latest`.
    #[error("attested time {at} is not after the latest attested time {latest}")]
    TimeAttestedBackwards {
        /// The time attested, in micros since the Unix epoch.
        at: u64,
        /// The latest attested time held, in micros since the Unix epoch.
        latest: u64,
    },
    /// Code `deadline_not_attested`: `what` ends at `deadline`; the associations have attested only `attested`.
    #[error("{what} ends at {deadline}; the associations have attested only {attested}")]
    DeadlineNotAttested {
        /// What ends (a confirmation window, an allocation's validity, …).
        what: &'static str,
        /// When it ends, in micros since the Unix epoch.
        deadline: u64,
        /// The latest time the associations attested, in micros since the Unix epoch.
        attested: u64,
    },

    // --- lessons and disputes ---
    /// Code `lesson_exists`: lesson `lesson` already exists.
    #[error("lesson {lesson} already exists")]
    LessonExists {
        /// Id of the lesson.
        lesson: String,
    },
    /// Code `lesson_unknown`: lesson `lesson` is unknown.
    #[error("lesson {lesson} is unknown")]
    LessonUnknown {
        /// Id of the lesson.
        lesson: String,
    },
    /// Code `lesson_not_pending`: lesson `lesson` is `status`, not pending.
    #[error("lesson {lesson} is {status}, not pending")]
    LessonNotPending {
        /// Id of the lesson.
        lesson: String,
        /// The status it has (`confirmed`, `disputed`, …).
        status: &'static str,
    },
    /// Code `window_not_elapsed`: the confirmation window ends at `window_end`, not yet at `time`.
    #[error("the confirmation window ends at {window_end}, not yet at {time}")]
    WindowNotElapsed {
        /// The entry's ledger time, in micros since the Unix epoch.
        time: u64,
        /// End of the lesson's confirmation window, in micros since the Unix epoch.
        window_end: u64,
    },
    /// Code `window_elapsed`: the confirmation window ended at `window_end` (ledger time `time`).
    #[error("the confirmation window ended at {window_end} (ledger time {time})")]
    WindowElapsed {
        /// The entry's ledger time, in micros since the Unix epoch.
        time: u64,
        /// End of the lesson's confirmation window, in micros since the Unix epoch.
        window_end: u64,
    },
    /// Code `dispute_exists`: dispute `dispute` already exists.
    #[error("dispute {dispute} already exists")]
    DisputeExists {
        /// Id of the dispute.
        dispute: String,
    },
    /// Code `dispute_unknown`: dispute `dispute` is unknown.
    #[error("dispute {dispute} is unknown")]
    DisputeUnknown {
        /// Id of the dispute.
        dispute: String,
    },
    /// Code `dispute_not_open`: dispute `dispute` is not open.
    #[error("dispute {dispute} is not open")]
    DisputeNotOpen {
        /// Id of the dispute.
        dispute: String,
    },

    /// Code `payload_type_unsupported`: payload type `found` is not `PAYLOAD_TYPE`.
    #[error("payload type {found:?} is not {}", super::PAYLOAD_TYPE)]
    PayloadTypeUnsupported {
        /// The envelope's payload type.
        found: String,
    },

    // --- arithmetic and state ---
    /// Code `overflow`: arithmetic overflow computing `what`.
    #[error("arithmetic overflow computing {what}")]
    Overflow {
        /// The quantity being computed.
        what: &'static str,
    },
    /// Code `underflow`: arithmetic underflow computing `what`.
    #[error("arithmetic underflow computing {what}")]
    Underflow {
        /// The quantity being computed.
        what: &'static str,
    },
    /// Code `state_corrupt`: the stored state is inconsistent (an object of another type
    /// under an id, an object that names one missing): the rules cannot decide.
    #[error("stored state is inconsistent: {detail}")]
    StateCorrupt {
        /// What exactly was wrong, in words (for people; the code is for programs).
        detail: String,
    },
    /// Code `state_unavailable`: the state of a batch could not be written (a read
    /// cannot fail: both stores hold the state in memory); the batch's later entries are
    /// refused with it.
    #[error("state store unavailable: {detail}")]
    StateUnavailable {
        /// What exactly was wrong, in words (for people; the code is for programs).
        detail: String,
    },
    /// Code `party_quota_exceeded`: party `party` has signed its `max` entries of quota day `day`.
    #[error("party {party} has signed its {max} entries of quota day {day}")]
    PartyQuotaExceeded {
        /// Id of the party.
        party: String,
        /// The quota day: ledger time in whole days since the Unix epoch (UTC).
        day: u64,
        /// Most entries a party may sign in a quota day.
        max: u64,
    },
    /// Code `key_changes_exceeded`: party `party` has made its `max` key changes of quota day `day`.
    #[error("party {party} has made its {max} key changes of quota day {day}")]
    KeyChangesExceeded {
        /// Id of the party.
        party: String,
        /// The quota day: ledger time in whole days since the Unix epoch (UTC).
        day: u64,
        /// Most key changes a party may make in a quota day.
        max: u64,
    },
    /// Code `operator_key_not_recoverable`: the operator's key is not recovered this way: it rotates (signed by old and new key).
    #[error(
        "the operator's key is not recovered this way: it rotates (signed by old and new key)"
    )]
    OperatorKeyNotRecoverable,
    /// A balance identity would break: a bug of the rules, never the entry's fault.
    #[error("internal error: a balance identity would break ({detail}); the entry is refused")]
    InvariantViolated {
        /// What exactly was wrong, in words (for people; the code is for programs).
        detail: String,
    },
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
            E::ClaimAllocationsFull { .. } => "claim_allocations_full",
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
