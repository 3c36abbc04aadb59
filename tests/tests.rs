//! The integration tests, one binary with a module per topic (link time matters on
//! two cores).

mod support;

mod audit;
mod cli;
mod crash;
mod demo;
mod envelope;
mod fuzz_regressions;
mod http;
mod http_cosign;
mod http_limits;
mod http_witnesses;
mod interop;
mod keys;
mod kill_campaign;
mod ledger;
mod ledger_time;
mod listings;
mod log_store;
mod match_runs;
mod matching;
mod merkle;
mod mirror;
mod mirror_any;
mod national;
mod note;
mod pipeline;
mod power_cut;
mod preferences;
mod publish;
#[cfg(feature = "s3")]
mod publish_s3;
mod python_verifier;
mod rules;
mod run_hardening;
mod schemas;
mod scripts;
mod state_map;
mod state_map_seal;
mod state_proofs;
mod state_reads;
mod storage;
mod submission;
mod tidy;
mod web;
mod web_state;
mod witness;
mod witness_limits;
mod write_path;
