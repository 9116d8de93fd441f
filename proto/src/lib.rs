//! Fabula's contracts and the runtime every service shares.
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
    }
}
