//! Every size limit of the ledger, in one place, named with the qualifier last.
//!
//! Input is capped *before* it is parsed. The relations between limits are checked at
//! compile time, each with the reason it must hold.

/// Largest envelope accepted, as submitted JSON bytes. tlog-tiles caps an entry at
/// 64 KiB; the stored leaf is never larger than the JSON it came from (base64 shrinks
/// to raw bytes, field names disappear), so this cap also bounds every leaf.
pub const ENVELOPE_BYTES_MAX: usize = 64 * 1024;

/// Largest leaf, in bytes (tlog-tiles: "entries MUST NOT exceed 64 KiB" in a bundle,
/// whose length prefix is a u16).
pub const LEAF_BYTES_MAX: usize = 64 * 1024 - 1;

/// Largest DSSE `payloadType`, in bytes.
pub const PAYLOAD_TYPE_BYTES_MAX: usize = 128;

/// Largest DSSE `keyid`, in bytes: a C2SP verifier key with a name of up to 128 bytes.
pub const KEYID_BYTES_MAX: usize = 256;

/// Most signatures on one envelope. The widest consent the ledger records needs two or
/// three (operator, student, institution); eight leaves room without inviting abuse.
pub const SIGNATURES_PER_ENVELOPE_MAX: usize = 8;

/// Longest client id (an idempotency key chosen by the submitter), in bytes.
pub const CLIENT_ID_BYTES_MAX: usize = 128;

/// Most entries the sequencer writes under one fdatasync (group commit).
pub const BATCH_ENTRIES_MAX: usize = 4096;

/// Most bytes of framing a record adds around its body (kind, length, checksum).
pub const RECORD_OVERHEAD_BYTES: usize = 1 + 4 + 4;

/// Largest record body in the log file: a leaf, or a checkpoint note.
pub const RECORD_BODY_BYTES_MAX: usize = 64 * 1024;

/// Largest checkpoint note (body and signature lines), in bytes.
pub const CHECKPOINT_BYTES_MAX: usize = 16 * 1024;

/// Longest origin line of a checkpoint.
pub const ORIGIN_BYTES_MAX: usize = 256;

/// Most entries in one batched `POST /v1/entries`.
pub const ENTRIES_PER_REQUEST_MAX: usize = 1024;

/// Largest HTTP request body, in bytes: a full batch of small entries, not of maximal
/// ones (1024 × 64 KiB would be 64 MiB per request). Larger entries go in smaller batches.
pub const REQUEST_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Most entries waiting in the server's append queue (verified, not yet written). Two
/// full group commits: the writer always has a full next batch ready while one is
/// syncing, and the memory they hold is bounded by this times `ENVELOPE_BYTES_MAX`.
pub const QUEUE_ENTRIES_MAX: usize = 2 * BATCH_ENTRIES_MAX;

/// Largest `POST /v1/cosign` body: one signature line and a few fields.
pub const COSIGN_BODY_BYTES_MAX: usize = 4 * 1024;

/// Longest an operator's match run may take over HTTP (`POST /v1/match`), server and
/// client alike: at a million claims the matcher, and signing and appending its
/// allocations, take minutes — far beyond an ordinary request's timeout.
pub const MATCH_RUN_SECONDS_MAX: u64 = 30 * 60;

const _: () = assert!(
    ENTRIES_PER_REQUEST_MAX <= BATCH_ENTRIES_MAX,
    "one request's entries must fit one group commit, so a request is never split"
);
const _: () = assert!(
    ENVELOPE_BYTES_MAX <= REQUEST_BODY_BYTES_MAX,
    "a single maximal envelope must be postable"
);
const _: () = assert!(
    LEAF_BYTES_MAX < ENVELOPE_BYTES_MAX,
    "a leaf must fit the tlog-tiles u16 length prefix, the envelope cap bounds it from above"
);
const _: () = assert!(
    LEAF_BYTES_MAX <= RECORD_BODY_BYTES_MAX && CHECKPOINT_BYTES_MAX <= RECORD_BODY_BYTES_MAX,
    "every leaf and every checkpoint must fit one record"
);
const _: () = assert!(
    KEYID_BYTES_MAX * SIGNATURES_PER_ENVELOPE_MAX < LEAF_BYTES_MAX,
    "signature metadata alone must never fill a leaf"
);

// --- HTTP service and client (issue 11: bounded responses, slow clients, amplification) ---

/// Most signatures in one `POST /v1/entries`, over all its envelopes: each costs an
/// Ed25519 verification before the rules run, so this bounds the CPU one request can
/// take (two a full batch's entry, on average; the client splits larger ones).
pub const SIGNATURES_PER_REQUEST_MAX: usize = 2 * ENTRIES_PER_REQUEST_MAX;

/// Most proven entries in one page of a balance (`GET /v1/claims/{id}` and the like):
/// a page is built in memory under the ledger's read lock, so this bounds both.
pub const BALANCE_PAGE_ENTRIES_MAX: usize = 64;

/// Most connections the server holds open; more wait in the kernel's backlog. Below
/// the usual file-descriptor limit (1024), so `accept` never fails for want of one.
pub const CONNECTIONS_MAX: usize = 512;

/// Most requests the server works on at once; more are answered `503` at once.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 256;

/// Longest a client may take to send a request's headers, and to start its next
/// request on a kept-alive connection, in seconds.
pub const HEADER_SECONDS_MAX: u64 = 10;

/// Longest one write of a response may wait for a client that does not read, in seconds.
pub const WRITE_SECONDS_MAX: u64 = 30;

/// Longest a graceful shutdown waits for open connections before closing them, in
/// seconds.
pub const SHUTDOWN_SECONDS_MAX: u64 = 10;

/// Largest JSON body the client reads (a balance page, an entry, a proof, a report).
pub const CLIENT_JSON_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest tile body the client reads: a full entry bundle of maximal leaves, each
/// with its 2-byte length.
pub const CLIENT_TILE_BYTES_MAX: usize = 256 * (2 + LEAF_BYTES_MAX);

/// Largest checkpoint the client reads (the note with every cosignature).
pub const CLIENT_CHECKPOINT_BYTES_MAX: usize = CHECKPOINT_BYTES_MAX;

const _: () = assert!(
    SIGNATURES_PER_REQUEST_MAX >= ENTRIES_PER_REQUEST_MAX * 2,
    "a full batch of entries with two signatures each (party and operator) must be postable"
);
const _: () = assert!(
    SIGNATURES_PER_REQUEST_MAX >= SIGNATURES_PER_ENVELOPE_MAX,
    "a single envelope with its most signatures must be postable"
);
const _: () = assert!(
    REQUESTS_IN_FLIGHT_MAX <= CONNECTIONS_MAX,
    "with HTTP/1.1 a connection carries one request at a time"
);
const _: () = assert!(
    BALANCE_PAGE_ENTRIES_MAX * 2 * ENVELOPE_BYTES_MAX < CLIENT_JSON_BYTES_MAX,
    "a page of maximal entries (each served with its proof in under twice its envelope) must fit what the client reads, with room for the balance"
);
