//! Hostile input: pickles that name dangerous globals, truncated and random files, sizes
//! that lie. Every case must end in a clean error, quickly, without running anything.

use std::time::{Duration, Instant};

use stylecam::model::weights::emit::{self, op, Pickler, Storage, Style, Tensor};
use stylecam::model::weights::{legacy, load_bytes, torch_zip, WeightsError};

/// Hostile sizes must fail at once, before any allocation: these inputs take microseconds.
/// The bound is a hang guard, loose enough for a loaded CI machine, not a speed target.
const HANG_GUARD: Duration = Duration::from_secs(10);

const DANGEROUS: [(&str, &str); 6] = [
    ("posix", "system"),
    ("os", "system"),
    ("builtins", "eval"),
    ("__builtin__", "eval"),
    ("subprocess", "Popen"),
    ("torch", "load"),
];

/// `module.name("touch <path>")` via GLOBAL (protocol 0 text, as a classic exploit writes it).
fn global_exploit(module: &str, name: &str, path: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n(S'touch {path}'\ntR.").into_bytes()
}

/// The same call via STACK_GLOBAL (protocol 4).
fn stack_global_exploit(module: &str, name: &str, path: &str) -> Vec<u8> {
    let mut p = Pickler::new(Style::Py3);
    p.str(module).str(name).op(op::STACK_GLOBAL);
    p.str(&format!("touch {path}"))
        .op(op::TUPLE1)
        .op(op::REDUCE);
    p.finish()
}

/// A state dict with one good tensor, then a value that calls `module.name`.
fn hidden_exploit(module: &str, name: &str, path: &str) -> Vec<u8> {
    let mut p = Pickler::new(Style::Py3);
    p.global("collections", "OrderedDict")
        .op(op::EMPTY_TUPLE)
        .op(op::REDUCE);
    p.op(op::MARK)
        .str("good")
        .global("torch._utils", "_rebuild_tensor")
        .op(op::MARK);
    p.op(op::MARK)
        .str("storage")
        .global("torch", "FloatStorage");
    p.str("0")
        .str("cpu")
        .int(0)
        .op(op::NONE)
        .op(op::TUPLE)
        .op(op::BINPERSID);
    p.int(0)
        .usizes(&[0])
        .usizes(&[1])
        .op(op::TUPLE)
        .op(op::REDUCE);
    p.str("evil").global(module, name);
    p.str(&format!("touch {path}"))
        .op(op::TUPLE1)
        .op(op::REDUCE);
    p.op(op::SETITEMS);
    p.finish()
}

fn expect_forbidden(result: Result<impl std::fmt::Debug, WeightsError>, global: &str) {
    let err = result.expect_err("a dangerous global was accepted");
    let msg = err.to_string();
    assert!(
        matches!(&err, WeightsError::ForbiddenGlobal { global: g, .. } if g == global),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("refusing to load global `{global}`")),
        "{msg}"
    );
    assert!(msg.contains("may be malicious"), "{msg}");
}

#[test]
fn dangerous_globals_are_refused_by_name_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let path = marker.to_str().unwrap();
    for (module, name) in DANGEROUS {
        let global = format!("{module}.{name}");
        for pickle in [
            global_exploit(module, name, path),
            stack_global_exploit(module, name, path),
            hidden_exploit(module, name, path),
        ] {
            // A bare pickle, the state dict of a legacy file, and data.pkl of a zip.
            expect_forbidden(legacy::parse(&pickle, "bare.pkl"), &global);
            let container = emit::legacy_container(Style::Py2, &pickle, &[]);
            expect_forbidden(load_bytes(&container, "evil.model"), &global);
            let zip = emit::zip_container("archive", &pickle, &[]).unwrap();
            expect_forbidden(load_bytes(&zip, "evil.pth"), &global);
        }
        // INST names its class inline; it is refused by name too.
        let inst = format!("(S'touch {path}'\ni{module}\n{name}\n.");
        expect_forbidden(legacy::parse(inst.as_bytes(), "inst.pkl"), &global);
    }
    assert!(!marker.exists(), "a pickle ran a command");
}

#[test]
fn forbidden_global_error_message() {
    let err = legacy::parse(b"cposix\nsystem\n.", "x.model").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.model: refusing to load global `posix.system`: only the globals a PyTorch state \
         dict needs are allowed (this file may be malicious)"
    );
    // Control characters in a name are escaped, not printed.
    let err = legacy::parse(b"cos\x1b[2J\nsystem\n.", "x").unwrap_err();
    assert!(err.to_string().contains("`os\\u{1b}[2J.system`"), "{err}");
}

#[test]
fn unknown_opcodes_are_named_with_their_offset() {
    let err = legacy::parse(b"\x80\x02\x8f.", "x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x: unsupported pickle opcode 0x8f at byte 2"
    );
    // OBJ builds an arbitrary object: refused.
    let err = legacy::parse(b"(cposix\nsystem\no.", "x").unwrap_err();
    assert!(matches!(err, WeightsError::ForbiddenGlobal { .. }), "{err}");
    let err = legacy::parse(b"(o.", "x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x: unsupported pickle opcode 0x6f at byte 1"
    );
}

fn small_legacy(style: Style) -> Vec<u8> {
    let storages = [Storage::f32("7", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])];
    let tensors = [
        Tensor::contiguous("a.weight", 0, &[2, 3]),
        Tensor {
            view: Some(("7v".into(), 2, 4)),
            ..Tensor::contiguous("a.bias", 0, &[4])
        },
    ];
    emit::legacy_file(style, &storages, &tensors)
}

#[test]
fn every_prefix_of_a_legacy_file_is_truncated() {
    for style in [Style::Py2, Style::Py3] {
        let file = small_legacy(style);
        assert!(legacy::parse(&file, "ok").is_ok());
        for n in 0..file.len() {
            let err = legacy::parse(&file[..n], "cut.model").unwrap_err();
            assert_eq!(err.to_string(), format!("cut.model: truncated at byte {n}"));
            // Through detection, short prefixes are not recognised at all.
            assert!(load_bytes(&file[..n], "cut.model").is_err());
        }
    }
}

#[test]
fn every_prefix_of_a_zip_file_fails_cleanly() {
    let zip = emit::zip_file(
        "archive",
        &[Storage::f32("0", &[1.0, 2.0])],
        &[Tensor::contiguous("w", 0, &[2])],
    )
    .unwrap();
    assert!(torch_zip::parse(&zip, "ok").is_ok());
    for n in 0..zip.len() {
        let err = torch_zip::parse(&zip[..n], "cut.pth").unwrap_err();
        assert!(err.to_string().starts_with("cut.pth: "), "{err}");
    }
}

/// A one-tensor state dict whose FloatStorage `0` claims `numel` elements.
fn claiming(numel: i64, shape: &[usize], stride: &[usize], offset: i64) -> Vec<u8> {
    let mut p = Pickler::new(Style::Py2);
    p.global("collections", "OrderedDict")
        .op(op::EMPTY_TUPLE)
        .op(op::REDUCE);
    p.op(op::MARK)
        .str("w")
        .global("torch._utils", "_rebuild_tensor")
        .op(op::MARK);
    p.op(op::MARK)
        .str("storage")
        .global("torch", "FloatStorage");
    p.str("0")
        .str("cpu")
        .int(numel)
        .op(op::NONE)
        .op(op::TUPLE)
        .op(op::BINPERSID);
    p.int(offset)
        .usizes(shape)
        .usizes(stride)
        .op(op::TUPLE)
        .op(op::REDUCE);
    p.op(op::SETITEMS);
    p.finish()
}

fn twelve() -> Storage {
    Storage::f32("0", &[0.0; 12])
}

#[test]
fn storage_larger_than_the_file_fails_before_allocating() {
    let main = claiming(1 << 40, &[1 << 20, 1 << 20], &[1 << 20, 1], 0);
    let file = emit::legacy_container(Style::Py2, &main, &[twelve()]);
    assert!(file.len() < 400, "{}", file.len());
    let start = Instant::now();
    let err = load_bytes(&file, "big.model").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert_eq!(
        err.to_string(),
        format!(
            "big.model: storage `0` claims {} bytes but the file has only {}",
            4u64 << 40,
            file.len()
        )
    );
    // The same lie inside a zip.
    let zip = emit::zip_container("archive", &main, &[twelve()]).unwrap();
    let err = load_bytes(&zip, "big.pth").unwrap_err();
    assert!(matches!(err, WeightsError::StorageTooLarge { .. }), "{err}");
}

#[test]
fn element_count_in_the_data_section_must_match() {
    // The pickle says 12 elements; the data section says 1 << 40.
    let main = claiming(12, &[12], &[1], 0);
    let mut file = emit::legacy_container(Style::Py2, &main, &[twelve()]);
    let count_at = file.len() - 48 - 8;
    file[count_at..count_at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    let err = legacy::parse(&file, "m").unwrap_err();
    assert!(
        err.to_string().contains("has 1099511627776 elements"),
        "{err}"
    );
}

#[test]
fn huge_string_lengths_are_truncation_not_allocation() {
    for p in [
        &b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7fabc"[..], // BINUNICODE8
        b"\x80\x02X\xff\xff\xff\xffabc",                         // BINUNICODE
        b"\x80\x02B\xff\xff\xff\xffabc",                         // BINBYTES
        b"\x80\x02\x8b\xff\xff\xff\x7fabc",                      // LONG4
        b"\x80\x02T\xff\xff\xff\x7fabc",                         // BINSTRING
    ] {
        let err = legacy::parse(p, "s").unwrap_err();
        assert_eq!(err.to_string(), format!("s: truncated at byte {}", p.len()));
    }
    let err = legacy::parse(b"\x80\x02T\xff\xff\xff\xffabc", "s").unwrap_err();
    assert!(
        err.to_string().contains("negative BINSTRING length"),
        "{err}"
    );
}

#[test]
fn stride_past_the_storage_is_refused() {
    let cases: [(&[usize], &[usize], i64); 3] = [
        (&[3, 4], &[4, 1], 2), // ends at element 13 of 12
        (&[4, 3], &[1, 4], 1), // transposed, one too far
        (&[2], &[1 << 62], 0), // stride overflows nothing but reaches far
    ];
    for (shape, stride, offset) in cases {
        let main = claiming(12, shape, stride, offset);
        let file = emit::legacy_container(Style::Py2, &main, &[twelve()]);
        let err = legacy::parse(&file, "s.model").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "s.model: tensor `w`: shape {shape:?} with stride {stride:?} at offset {offset} \
                 reaches past its storage of 12 elements"
            )
        );
    }
    // The in-bounds transposed view is fine.
    let main = claiming(12, &[4, 3], &[1, 4], 0);
    let file = emit::legacy_container(Style::Py2, &main, &[twelve()]);
    assert!(legacy::parse(&file, "ok").is_ok());
    // Overflowing arithmetic is an out-of-bounds error, not a wrap-around.
    let main = claiming(12, &[3, 3], &[usize::MAX >> 1, 3], 0);
    let file = emit::legacy_container(Style::Py2, &main, &[twelve()]);
    let err = legacy::parse(&file, "o").unwrap_err();
    assert!(matches!(err, WeightsError::OutOfBounds { .. }), "{err}");
}

#[test]
fn broadcast_views_cannot_blow_up_memory() {
    // Stride 0: 2^40 elements that all read element 0 of a 12-element storage.
    let main = claiming(12, &[1 << 20, 1 << 20], &[0, 0], 0);
    let file = emit::legacy_container(Style::Py2, &main, &[twelve()]);
    let start = Instant::now();
    let err = legacy::parse(&file, "b").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert!(
        err.to_string()
            .contains("decodes to more bytes than the file"),
        "{err}"
    );
}

#[test]
fn storage_view_past_its_root_is_refused() {
    let tensors = [Tensor {
        view: Some(("v".into(), 10, 4)),
        ..Tensor::contiguous("w", 0, &[4])
    }];
    let file = emit::legacy_file(Style::Py2, &[twelve()], &tensors);
    let err = legacy::parse(&file, "v").unwrap_err();
    assert!(
        err.to_string().contains("storage view reaches past"),
        "{err}"
    );
}

#[test]
fn deep_nesting_and_copy_bombs_end_quickly() {
    // 100k nested 1-tuples: refused at depth 32, no stack overflow in drop.
    let mut deep = b"\x80\x02N".to_vec();
    deep.extend(std::iter::repeat_n(op::TUPLE1, 100_000));
    deep.push(op::STOP);
    let err = legacy::parse(&deep, "d").unwrap_err();
    assert!(err.to_string().contains("nested deeper than 32"), "{err}");

    // A 30k-item list memoised then appended to, over and over: each append would copy it.
    let mut bomb = b"\x80\x02](".to_vec();
    bomb.extend(std::iter::repeat_n(op::NONE, 30_000));
    bomb.push(op::APPENDS);
    for _ in 0..20_000 {
        bomb.extend([op::BINPUT, 0, op::NONE, b'a']);
    }
    bomb.push(op::STOP);
    let start = Instant::now();
    let err = legacy::parse(&bomb, "c").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert!(err.to_string().contains("too much copying"), "{err}");

    // Doubling through the memo (billion laughs) shares, never copies.
    let mut laughs = b"\x80\x02N\x71\x00".to_vec();
    for _ in 0..30 {
        laughs.extend([op::BINGET, 0, op::BINGET, 0, 0x86, op::BINPUT, 0, b'0']);
    }
    laughs.extend([op::BINGET, 0, op::STOP]);
    let start = Instant::now();
    let err = legacy::parse(&laughs, "l").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert!(err.to_string().contains("no magic number"), "{err}");
}

#[test]
fn big_endian_files_are_refused() {
    let file = small_legacy(Style::Py3);
    let needle = b"little_endian\x88";
    let at = file
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut big = file.clone();
    big[at + needle.len() - 1] = op::NEWFALSE;
    let err = load_bytes(&big, "be.model").unwrap_err();
    assert!(matches!(err, WeightsError::BigEndian { .. }), "{err}");

    let pkl = emit::state_dict_pickle(
        Style::Py3,
        &[twelve()],
        &[Tensor::contiguous("w", 0, &[12])],
    );
    let data = twelve().data;
    let stored = zip::CompressionMethod::Stored;
    let mut entries = vec![
        ("archive/data.pkl", &pkl[..], stored),
        ("archive/byteorder", &b"little"[..], stored),
        ("archive/data/0", &data[..], stored),
    ];
    assert!(load_bytes(&custom_zip(&entries), "le.pth").is_ok());
    entries[1].1 = b"big";
    let err = load_bytes(&custom_zip(&entries), "be.pth").unwrap_err();
    assert_eq!(
        err.to_string(),
        "be.pth: stored big-endian; only little-endian files are supported"
    );
}

fn custom_zip(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for &(name, data, method) in entries {
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        z.start_file(name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// Sets the uncompressed size of `entry` in its local and central headers.
fn patch_zip_size(zip: &mut [u8], entry: &str, size: u32) {
    let name = entry.as_bytes();
    let mut patched = 0;
    for i in 0..zip.len().saturating_sub(46) {
        let (size_at, name_at) = match &zip[i..i + 4] {
            b"PK\x03\x04" => (i + 22, i + 30),
            b"PK\x01\x02" => (i + 24, i + 46),
            _ => continue,
        };
        if zip.get(name_at..name_at + name.len()) == Some(name) {
            zip[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "{entry}");
}

#[test]
fn zip_entries_claiming_huge_sizes_are_refused_before_reading() {
    let storages = [twelve()];
    let tensors = [Tensor::contiguous("w", 0, &[12])];
    for entry in ["archive/data/0", "archive/data.pkl"] {
        let mut zip = emit::zip_file("archive", &storages, &tensors).unwrap();
        patch_zip_size(&mut zip, entry, 0xffff_fff0);
        let start = Instant::now();
        let err = torch_zip::parse(&zip, "bomb.pth").unwrap_err();
        assert!(start.elapsed() < HANG_GUARD);
        assert!(err.to_string().contains("4294967280"), "{err}");
    }
}

#[test]
fn deflate_bomb_entry_is_refused_by_its_size() {
    // A storage entry that inflates to 64 MiB where 48 bytes are expected.
    let pkl = emit::state_dict_pickle(
        Style::Py3,
        &[twelve()],
        &[Tensor::contiguous("w", 0, &[12])],
    );
    let zeros = vec![0u8; 64 << 20];
    let deflated = zip::CompressionMethod::Deflated;
    let zip = custom_zip(&[
        ("archive/data.pkl", &pkl[..], deflated),
        ("archive/data/0", &zeros[..], deflated),
    ]);
    assert!(zip.len() < 200_000);
    let start = Instant::now();
    let err = torch_zip::parse(&zip, "bomb.pth").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert!(err.to_string().contains("claims 67108864 bytes"), "{err}");
    // Deflated entries of the right size are read.
    let data = twelve().data;
    let zip = custom_zip(&[
        ("archive/data.pkl", &pkl[..], deflated),
        ("archive/data/0", &data[..], deflated),
    ]);
    assert!(torch_zip::parse(&zip, "ok.pth").is_ok());
}

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_bytes_are_not_weights() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for i in 0..3000 {
        let n = match i % 4 {
            0 => (rng.next() % 16) as usize,
            1 => (rng.next() % 256) as usize,
            2 => (rng.next() % 4096) as usize,
            _ => (rng.next() % 70_000) as usize,
        };
        let bytes = rng.bytes(n);
        let err = load_bytes(&bytes, "noise.bin").unwrap_err();
        assert!(err.to_string().starts_with("noise.bin: "), "{err}");
        if !bytes.starts_with(b"PK\x03\x04") && bytes.first() != Some(&0x80) {
            assert!(matches!(err, WeightsError::NotWeights { .. }), "{err}");
        }
    }
    let err = load_bytes(b"?*\x01\x02", "n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "n: not a PyTorch or safetensors file (starts with 3f 2a 01 02)"
    );
}

#[test]
fn random_bodies_behind_real_magic_fail_cleanly() {
    let mut rng = Rng(42);
    let heads: [&[u8]; 4] = [
        &legacy::MAGIC_PREFIX,
        b"PK\x03\x04",
        b"\x40\x00\x00\x00\x00\x00\x00\x00{\"w\":",
        b"\x80\x02",
    ];
    for i in 0..4000 {
        let mut bytes = heads[i % heads.len()].to_vec();
        let n = (rng.next() % 2048) as usize;
        bytes.extend(rng.bytes(n));
        let start = Instant::now();
        let err = load_bytes(&bytes, "r").unwrap_err();
        assert!(err.to_string().starts_with("r: "), "{err}");
        assert!(start.elapsed() < HANG_GUARD);
    }
}

#[test]
fn mutated_valid_files_never_panic() {
    // Flip bytes of valid files: errors or (rarely) a decoded file, never a panic.
    let mut rng = Rng(7);
    let files = [
        small_legacy(Style::Py2),
        small_legacy(Style::Py3),
        emit::zip_file(
            "archive",
            &[twelve()],
            &[Tensor::contiguous("w", 0, &[3, 4])],
        )
        .unwrap(),
    ];
    for i in 0..6000 {
        let mut f = files[i % files.len()].clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % f.len();
            f[at] = rng.next() as u8;
        }
        if let Ok(sd) = load_bytes(&f, "m") {
            for t in sd.tensors.values() {
                assert_eq!(t.data.len(), t.numel() * t.dtype.size_in_bytes());
            }
        }
    }
}

#[test]
fn memoised_arguments_reused_many_times_are_bounded() {
    // A list of 20k (None, None) pairs, memoised, passed to OrderedDict 20k times: unbounded,
    // that is 400M pairs (about 19 GB).
    let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x01](NN\x86q\x02".to_vec();
    for _ in 0..20_000 {
        p.extend([op::BINGET, 2]);
    }
    p.extend([op::APPENDS, op::BINPUT, 3]);
    for _ in 0..20_000 {
        p.extend([op::BINGET, 1, op::BINGET, 3, op::TUPLE1, op::REDUCE]);
    }
    p.push(op::STOP);
    let start = Instant::now();
    let err = legacy::parse(&p, "od").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert!(err.to_string().contains("too much copying"), "{err}");

    // One tensor of 5000 dims under 3000 keys: each key would copy its shape and stride.
    let ones = vec![1usize; 5000];
    let mut p = Pickler::new(Style::Py2);
    p.global("collections", "OrderedDict")
        .op(op::EMPTY_TUPLE)
        .op(op::REDUCE)
        .op(op::MARK);
    p.str("k0")
        .global("torch._utils", "_rebuild_tensor")
        .op(op::MARK);
    p.op(op::MARK)
        .str("storage")
        .global("torch", "FloatStorage");
    p.str("0")
        .str("cpu")
        .int(12)
        .op(op::NONE)
        .op(op::TUPLE)
        .op(op::BINPERSID);
    p.int(0)
        .usizes(&ones)
        .usizes(&ones)
        .op(op::TUPLE)
        .op(op::REDUCE);
    p.op(op::BINPUT).op(200);
    for i in 1..3000 {
        p.str(&format!("k{i}")).op(op::BINGET).op(200);
    }
    p.op(op::SETITEMS);
    let file = emit::legacy_container(Style::Py2, &p.finish(), &[twelve()]);
    let start = Instant::now();
    let err = legacy::parse(&file, "alias").unwrap_err();
    assert!(start.elapsed() < HANG_GUARD);
    assert!(err.to_string().contains("decodes to more bytes"), "{err}");
}
