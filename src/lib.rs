//! Lesson Ledger: an append-only, signed, publicly verifiable ledger of prepaid lessons
//! owed by closed tutoring institutions, the courses pledged to make them good, the
//! matches between the two and every lesson consumed.
//!
//! The crate is layered; each layer knows only the ones below it (lowest first, the
//! order `tests/tidy.rs` enforces):
//! - [`limits`]: every size limit of the log layer, in one place.
//! - [`net`]: the hardened connection loop the HTTP servers share (timeouts, a cap), and
//!   the [`net::ServerHandle`] each of them runs on (its own thread and runtime, a
//!   graceful stop).
//! - [`log`]: the verifiable log (DSSE envelopes, RFC 6962 Merkle tree, C2SP checkpoints,
//!   proofs, the tlog-tiles layout, the file that holds it all). It knows nothing of
//!   lessons or HTTP.
//! - [`witness`]: a C2SP tlog-witness server (`lesson-ledger witness`), over the log alone.
//! - [`ledger`]: the lesson-credit rules, entry payloads, the state and its state map, the
//!   one writer of a ledger directory.
//! - [`matching`]: the matcher, a pure function; [`runs`]: match runs recorded in the log
//!   and re-run by the auditor.
//! - [`api`]: the wire types of the read API (typed balance answers with their state
//!   proofs) and the one submission path, shared by the server and the client, knowing
//!   nothing of axum.
//! - [`http`]: the HTTP service (axum) over the ledger; [`client`]: its client and remote audit.
//! - [`publish`]: the log's read side as static tlog tiles for any web server (`lesson-ledger publish`).
//! - [`national`]: the national view, every city's published pool verified and summed (`lesson-ledger national`).
//! - [`mirror`]: a C2SP tlog-mirror of a log (`lesson-ledger mirror`): follows, verifies, replays, cosigns, serves.
//! - `src/web/`: the web app (HTML and JavaScript, no Rust), served by [`http`].
//! - [`demo`]: the mechanism end to end on synthetic data (`lesson-ledger demo`).
//! - [`cli`]: the `lesson-ledger` commands, dispatched in one place.
//!
//! See `ARCHITECTURE.md` for the map and the invariants.

#![warn(missing_docs)]

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
pub mod national;
pub mod net;
pub mod publish;
pub mod runs;
pub mod witness;
