//! The release manifest (YAML): schema, positions, validation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::manifest(data));
