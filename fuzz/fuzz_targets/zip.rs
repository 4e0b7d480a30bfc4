//! The PyTorch zip reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stylecam::model::weights::torch_zip;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = torch_zip::parse(data, "fuzz") {
        for t in sd.tensors.values() {
            assert_eq!(t.data.len(), t.numel() * t.dtype.size_in_bytes());
        }
    }
});
