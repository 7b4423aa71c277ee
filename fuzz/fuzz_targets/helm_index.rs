//! A chart repository's `index.yaml`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::helm_index(data));
