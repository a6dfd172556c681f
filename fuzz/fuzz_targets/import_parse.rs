//! Import parsing on arbitrary bytes: JSON→YAML conversion, blueprint and companion
//! parsing, entry-name checks and the secret scan (see
//! `bpv_engine::transfer::fuzz::import_parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpv_engine::transfer::fuzz::import_parse(data);
});
