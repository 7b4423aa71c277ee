//! What registries answer besides content: `WWW-Authenticate` challenges, error envelopes,
//! Harbor error bodies.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::registry_answers(data));
