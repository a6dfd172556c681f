//! `bpv_engine::fuzz::key_new` on arbitrary bytes (the same check runs on stable in
//! `crates/engine/tests/fuzz_props.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpv_engine::fuzz::key_new(data);
});
