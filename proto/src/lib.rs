//! Fabula's contracts: the code generated from `proto/`, the encoded descriptor set
//! ([`FILE_DESCRIPTOR_SET`]) for reflection and transcoding, and what the contracts'
//! own options declare, as tables: each method's [`policies`] and each request field's
//! [`rules`]. Nothing here runs a service; `fabula-runtime` does.

pub mod rules;

pub mod policies {
    //! The auth policy each method declares (`fabula.options.v1.auth_policy`).
    pub use crate::pb::fabula::options::v1::AuthPolicy;

    include!(concat!(env!("OUT_DIR"), "/auth_policies.rs"));
}

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
