//! Fabula's contracts and the small runtime every service shares.
//!
//! - [`pb`]: the code generated from `proto/`, and [`FILE_DESCRIPTOR_SET`] for reflection.
//! - [`auth`]: each method's declared policy, the [`auth::Caller`], and the tower layer
//!   that turns a bearer token into one.
//! - [`token`]: the access-token format (EdDSA JWT), its signing and verification.
//! - [`errors`]: `google.rpc` error details on every `Status`.
//! - [`rules`]: the rules of request fields the contracts declare, as constants and checks.
//! - `store` (feature `store`): the database plumbing of services that have one.
//! - [`metadata`], [`telemetry`], [`shutdown`], [`server`]: plumbing.

pub mod auth;
pub mod config;
pub mod errors;
pub mod keys;
pub mod metadata;
pub mod rules;
pub mod server;
pub mod shutdown;
#[cfg(feature = "store")]
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

/// Every file of Fabula's contracts with its imports, as an encoded `FileDescriptorSet`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fabula_descriptor.bin"));

pub mod pb {
    //! Code generated from `proto/`.
    pub mod google {
        pub mod api {
            tonic::include_proto!("google.api");
        }
    }
    pub mod fabula {
        pub mod options {
            pub mod v1 {
                tonic::include_proto!("fabula.options.v1");
            }
        }
        pub mod accounts {
            pub mod v1 {
                tonic::include_proto!("fabula.accounts.v1");
            }
        }
        pub mod story {
            pub mod v1 {
                tonic::include_proto!("fabula.story.v1");
            }
        }
        pub mod jobs {
            pub mod v1 {
                tonic::include_proto!("fabula.jobs.v1");
            }
        }
    }
    pub use fabula::accounts::v1 as accounts;
    pub use fabula::jobs::v1 as jobs;
    pub use fabula::story::v1 as story;
}
