#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tableau_publisher::fuzzing::server_info(data));
