//! What services with a database share: the pools ([`db`]), the error type mapped
//! once to `Status` ([`error`]), list pages and the SQL builder ([`pagination`]),
//! and list filters ([`filter`]).

pub mod db;
pub mod error;
pub mod filter;
pub mod pagination;

pub use db::{Backend, Db, flag, now_micros, timestamp};
pub use error::{Error, Result};
pub use pagination::{Bind, Key, Listing, Page, Sql};
