//! OpenPGP packets: keyrings (binary or armored), cleartext signatures (`InRelease`), detached
//! signatures (`Release.gpg`), checked against a real key.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::openpgp(data));
