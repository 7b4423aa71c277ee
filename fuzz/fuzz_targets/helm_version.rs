//! Helm chart versions and version ranges (`>=1.2 <2`, `~1.3`, `^0.4 || 1.x`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::helm_version(data));
