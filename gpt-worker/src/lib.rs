//! Fabula's gpt-worker. Its own issue builds it out; until then the crate only builds.
