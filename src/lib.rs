//! Lesson Ledger: an append-only, signed, publicly verifiable ledger of prepaid lessons
//! owed by closed tutoring institutions, the courses pledged to make them good, the
//! matches between the two and every lesson consumed.
//!
//! The crate is layered; each layer knows only the ones below it:
//! - [`log`]: the verifiable log (DSSE envelopes, RFC 6962 Merkle tree, C2SP checkpoints,
//!   proofs, the file that holds it all). It knows nothing of lessons or HTTP.
//! - [`limits`]: every size limit, in one place.
//! - [`net`]: the hardened connection loop the HTTP servers share (timeouts, a cap).
//! - [`matching`]: the matcher, a pure function; [`runs`]: match runs recorded in the log
//!   and re-run by the auditor.
//! - [`api`]: the wire types of the read API (typed balance answers with their state
//!   proofs), shared by the server and the client, knowing nothing of axum.
//! - [`demo`]: the mechanism end to end on synthetic data (`lesson-ledger demo`).
//! - [`witness`]: a C2SP tlog-witness server (`lesson-ledger witness`), over the log alone.
//! - [`http`]: the HTTP service (axum) over the ledger; [`client`]: its client and remote audit.
//!
//! See `ARCHITECTURE.md` for the map and the invariants.

pub mod api;
pub mod cli;
pub mod client;
pub mod demo;
pub mod http;
pub mod ledger;
pub mod limits;
pub mod log;
pub mod matching;
pub mod mirror;
pub mod net;
pub mod runs;
pub mod witness;
