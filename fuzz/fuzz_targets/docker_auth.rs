//! Docker/Podman auth files (`config.json`, `auth.json`): `auths` entries, base64 `auth`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry::fuzzing::docker_auth(data));
