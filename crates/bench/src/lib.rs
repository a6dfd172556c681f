//! Blueprint Vault benchmarks: a deterministic corpus generator (`corpus`) and a runner
//! (`run`) that measures the engine and the `bpv` CLI against VISION.md's targets.

pub mod corpus;
pub mod stats;
pub mod vocab;
pub mod yaml;
