//! The integration tests, one binary with a module per topic (link time matters on
//! two cores).

mod support;

mod audit;
mod cli;
mod crash;
mod demo;
mod envelope;
mod http;
mod ledger;
mod log_store;
mod match_runs;
mod matching;
mod merkle;
mod note;
mod rules;
mod schemas;
mod storage;
mod web;
