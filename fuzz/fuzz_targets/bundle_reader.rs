//! The `.zip` bundle reader on arbitrary bytes: never panics, accepts only safe entries
//! within the limits (see `bpv_engine::transfer::fuzz::bundle_reader`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bpv_engine::transfer::fuzz::bundle_reader(data);
});
