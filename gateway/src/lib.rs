//! Fabula's gateway. Its own issue builds it out; until then the crate only builds.
