//! Every size and range limit of the lesson-credit rules, in one place, qualifier last.
//!
//! The log layer's limits live in [`crate::limits`]; these are the domain's. Each limit is
//! checked before the value it bounds is used, and the relations between limits are
//! checked at compile time with the reason they must hold.
//!
//! ```
//! use lesson_ledger::ledger::limits::{CLAIM_LESSONS_MAX, PRICE_PER_LESSON_FEN_MAX};
//! // The largest claim value fits a u64 many times over.
//! assert!(CLAIM_LESSONS_MAX.checked_mul(PRICE_PER_LESSON_FEN_MAX).is_some());
//! ```

/// Largest entry payload (JSON bytes) the rules will parse. Checked before parsing.
pub const PAYLOAD_BYTES_MAX: usize = 16 * 1024;

/// Longest object id or party ref, in bytes (`^[a-z0-9][a-z0-9._-]{0,63}$`).
pub const ID_BYTES_MAX: usize = 64;

/// Longest free-text `reason`, in bytes of UTF-8.
pub const REASON_BYTES_MAX: usize = 512;

/// Longest `origin` named at genesis, in bytes (same as a checkpoint origin line).
pub const ORIGIN_BYTES_MAX: usize = crate::limits::ORIGIN_BYTES_MAX;

/// Longest verifier key string (keyid), in bytes.
pub const KEY_BYTES_MAX: usize = crate::limits::KEYID_BYTES_MAX;

/// Most districts named at genesis.
pub const DISTRICTS_MAX: usize = 64;

/// Most subjects named at genesis.
pub const SUBJECTS_MAX: usize = 256;

/// Most districts a student may accept besides the claim's own.
pub const ACCEPTED_DISTRICTS_MAX: usize = 64;

/// `claim_preferences_set`: most subjects a family ranks (a handful is a real choice;
/// more is a wish list the matcher would have to search for nothing).
pub const PREFERENCE_SUBJECTS_MAX: usize = 8;
/// `claim_preferences_set`: most districts a family accepts besides its own.
pub const PREFERENCE_DISTRICTS_MAX: usize = 16;
/// `claim_preferences_set`: most courses a family requests by pledge id.
pub const PREFERENCE_REQUESTS_MAX: usize = 5;

/// Most lessons one claim may record (the prepaid packages sold were far smaller).
pub const CLAIM_LESSONS_MAX: u64 = 1_000;

/// Highest price per lesson, in fen (10,000 yuan: well above any tutoring price).
pub const PRICE_PER_LESSON_FEN_MAX: u64 = 1_000_000;

/// Most seats one pledge may offer.
pub const PLEDGE_SEATS_MAX: u64 = 10_000;

/// Most lessons per seat of one pledge.
pub const LESSONS_PER_SEAT_MAX: u64 = 1_000;

/// Most claims one student may hold (a student attended few institutions); bounds the
/// student index object, rewritten on each new claim.
pub const CLAIMS_PER_STUDENT_MAX: usize = 64;

/// Most open allocations one claim may have at once (active, or ended with a lesson
/// still pending or disputed): bounds the claim object's `allocations` list, which is
/// rewritten with the claim. A claim's allocations come a few per match run and each
/// ends within `allocation_validity_days`, so honest use stays far below it; an
/// `allocation_made` beyond it is refused (`claim_allocations_full`).
pub const CLAIM_ALLOCATIONS_OPEN_MAX: usize = 64;

/// Most allocations one `match_run` may declare: four per claim at the cap of
/// [`MATCH_CLAIMS_MAX`] claims a run (a claim gets one allocation per pledge, and few
/// pledges each).
pub const MATCH_RUN_ALLOCATIONS_MAX: u64 = 4 * MATCH_CLAIMS_MAX as u64;

/// Most claims one match run reads (4× the 1,000,000 target). The ledger's (the matcher
/// reads it from here): the run size above is derived from it.
pub const MATCH_CLAIMS_MAX: usize = 4_000_000;
/// Most pledges one match run reads (10× the 10,000 target). The ledger's (the matcher
/// reads it from here): the per-institution pledge quota is bounded by it.
pub const MATCH_PLEDGES_MAX: usize = 100_000;

/// Keys a party object keeps: the current one and the few before it (the key table keeps
/// every key's record). A party's object is read for every entry it signs; before this
/// bound, 30,000 self-rotations made each of its entries copy a 30,000-key list.
pub const PARTY_KEYS_KEPT_MAX: usize = 8;

/// Entry indexes a party object keeps: its most recent entries (registration, key
/// changes, status changes). Older ones stay in the log.
pub const PARTY_ENTRIES_KEPT_MAX: usize = 64;

/// Key changes (`key_rotated`, `key_revoked`, `key_recovered`) per party per quota day:
/// enough to rotate, lose and recover a key in one day, too few to grow anything.
pub const KEY_CHANGES_PER_PARTY_PER_DAY_MAX: u64 = 4;

/// Entries one institution or student may sign per quota day. Generous for honest use
/// (a donor with 10,000 seats teaching each once a day signs 10,000; the city-scale
/// demo's 43 donors deliver about a million lessons in all, in one quota day), it bounds
/// what one party alone can add to the log: at most this × `PAYLOAD_BYTES_MAX` a day.
/// The operator and the associations are not counted: their entries are the ledger's
/// own business, each one accountable to the public.
pub const ENTRIES_PER_PARTY_PER_DAY_MAX: u64 = 200_000;

/// The quota day, in µs of ledger time: 24 hours, whatever `day_micros` the genesis
/// declares (a quota bounds disk, which fills in real time; a demonstration ledger's
/// short day must not shrink it).
pub const QUOTA_DAY_MICROS: u64 = DAY_MICROS;

/// Most pledges one institution may have offered and not yet had approved. A pledge
/// costs its institution one signature; without a bound, one institution could fill the
/// state (and every match run's scan) with pledges the operator never approves.
pub const PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX: u64 = 1_000;

/// Lowest and highest school grade (primary 1 to senior high 12).
pub const GRADE_MIN: u8 = 1;
/// Highest school grade.
pub const GRADE_MAX: u8 = 12;

/// Longest confirmation window, in days.
pub const CONFIRMATION_WINDOW_DAYS_MAX: u32 = 365;

/// Longest validity of an allocation, in days.
pub const ALLOCATION_VALIDITY_DAYS_MAX: u32 = 3_650;

/// Default confirmation window, in days (15, as on the national supervision platform).
pub const CONFIRMATION_WINDOW_DAYS_DEFAULT: u32 = 15;

/// One day of ledger time, in microseconds.
pub const DAY_MICROS: u64 = 86_400 * 1_000_000;

/// The shortest day a genesis may declare (`day_micros`): one second.
pub const DAY_MICROS_MIN: u64 = 1_000_000;

const _: () = assert!(
    CLAIM_LESSONS_MAX
        .checked_mul(PRICE_PER_LESSON_FEN_MAX)
        .is_some(),
    "a claim's value must never overflow u64"
);
const _: () = assert!(
    PLEDGE_SEATS_MAX * LESSONS_PER_SEAT_MAX * PRICE_PER_LESSON_FEN_MAX < u64::MAX / 1_000_000,
    "a pledge's value must fit u64 with room for a million pledges in the pool totals"
);
const _: () = assert!(
    (ALLOCATION_VALIDITY_DAYS_MAX as u64) * DAY_MICROS < u64::MAX / 2,
    "an expiry computed from any ledger time before 2^63 µs must not overflow"
);
const _: () = assert!(
    PAYLOAD_BYTES_MAX < crate::limits::LEAF_BYTES_MAX,
    "a payload the rules accept must fit a leaf"
);
const _: () = assert!(
    PLEDGES_UNAPPROVED_PER_INSTITUTION_MAX < MATCH_PLEDGES_MAX as u64,
    "one institution's unapproved pledges alone must stay far below a run's pledge cap"
);
const _: () = assert!(GRADE_MIN <= GRADE_MAX, "the grade range must not be empty");
const _: () = assert!(
    PARTY_KEYS_KEPT_MAX >= 2,
    "a party object must show at least its current key and the one it replaced"
);
const _: () = assert!(
    KEY_CHANGES_PER_PARTY_PER_DAY_MAX < ENTRIES_PER_PARTY_PER_DAY_MAX,
    "key changes are entries too: their own quota is the tighter one"
);
