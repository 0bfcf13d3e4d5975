//! The loader on arbitrary bytes: every input gives a store or a format error, never a crash; a store
//! that loads can be read whole and validated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for read_only in [true, false] {
        if let Ok(loaded) = compactstore::file::from_bytes(data, read_only) {
            let _ = compactstore::file::read_all(&loaded);
            let _ = loaded.validate();
        }
    }
});
