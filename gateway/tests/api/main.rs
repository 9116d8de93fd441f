//! The gateway's integration tests: a real HTTP client against the gateway in front of real services on loopback.
//! One test binary per crate: one link, and the tests share its threads.

#[macro_use]
mod common;

mod contracts;
mod errors;
mod openapi;
mod ops;
mod rest;
mod streams;
mod web;
