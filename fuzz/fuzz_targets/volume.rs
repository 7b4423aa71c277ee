//! A packed volume (tar, or tar in zstd frames) as import meets it on a stick: its entries,
//! names, label and plan (`ferry-volumes.json`); and the plan and label JSON on their own.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::volume(data));
