//! The weight reader on small files built here byte by byte (`weights::emit` lays them out
//! as PyTorch 0.2 under Python 2 and newer PyTorch under Python 3 do), so every expected
//! value below follows from the storages written in `fixture()`.

use std::collections::BTreeMap;

use stylecam::model::weights::emit::{self, Storage, Style, Tensor};
use stylecam::model::weights::pickle::{self, value::Value};
use stylecam::model::weights::{
    legacy, load, load_bytes, save_safetensors, torch_zip, DType, Format, RawTensor, StateDict,
    WeightsError,
};

fn f32s(t: &RawTensor) -> Vec<f32> {
    assert_eq!(t.dtype, DType::F32);
    t.to_f32().unwrap()
}

/// s0 = 0, 0.5, .. 5.5 (12 floats); s1 = 10 .. 15 (6 floats); s2 = one int64 (7).
fn storages() -> Vec<Storage> {
    let s0: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
    let s1: Vec<f32> = (10..16).map(|i| i as f32).collect();
    vec![
        Storage::f32("140212", &s0),
        Storage::f32("140388", &s1),
        Storage {
            key: "99".into(),
            dtype: DType::I64,
            data: 7i64.to_le_bytes().to_vec(),
        },
    ]
}

/// Tensors over `storages()`; with `view`, one reads s0 through a legacy storage view.
fn tensors(view: bool) -> Vec<Tensor> {
    let mut t = vec![
        Tensor::contiguous("model1.0.conv2d.weight", 0, &[2, 2, 3]),
        // The same storage under a second key, as MSG-Net's model.0 aliases model1.
        Tensor::contiguous("model.0.conv2d.weight", 0, &[2, 2, 3]),
        // s1 seen as 2x3, transposed: shape 3x2, stride (1, 3).
        Tensor {
            stride: vec![1, 3],
            ..Tensor::contiguous("fc.weight", 1, &[3, 2])
        },
        Tensor {
            offset: 2,
            ..Tensor::contiguous("model1.1.running_mean", 1, &[2])
        },
        Tensor::contiguous("model1.1.num_batches_tracked", 2, &[]),
    ];
    if view {
        // View s0[4..10]; the tensor takes its elements 1, 3, 5 = s0[5], s0[7], s0[9].
        t.push(Tensor {
            view: Some(("140212_view".into(), 4, 6)),
            offset: 1,
            stride: vec![2],
            ..Tensor::contiguous("ins.bias", 0, &[3])
        });
    }
    t
}

fn check_common(sd: &StateDict) {
    let w = &sd.tensors["model1.0.conv2d.weight"];
    assert_eq!(w.shape, [2, 2, 3]);
    let expected: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
    assert_eq!(f32s(w), expected);
    assert_eq!(&sd.tensors["model.0.conv2d.weight"], w);
    let fc = &sd.tensors["fc.weight"];
    assert_eq!(fc.shape, [3, 2]);
    assert_eq!(f32s(fc), [10.0, 13.0, 11.0, 14.0, 12.0, 15.0]);
    assert_eq!(f32s(&sd.tensors["model1.1.running_mean"]), [12.0, 13.0]);
    let n = &sd.tensors["model1.1.num_batches_tracked"];
    assert_eq!(
        (n.dtype, n.shape.as_slice(), n.numel()),
        (DType::I64, &[][..], 1)
    );
    assert_eq!(n.data, 7i64.to_le_bytes());
    assert!(matches!(
        n.to_f32(),
        Err(WeightsError::NotFloat { dtype: DType::I64 })
    ));
}

#[test]
fn python2_legacy_file_decodes_exactly() {
    let file = emit::legacy_file(Style::Py2, &storages(), &tensors(true));
    assert!(file.starts_with(&legacy::MAGIC_PREFIX));
    let sd = load_bytes(&file, "py2.model").unwrap();
    assert_eq!(sd.format, Format::Legacy);
    assert_eq!(sd.tensors.len(), 6);
    check_common(&sd);
    assert_eq!(f32s(&sd.tensors["ins.bias"]), [2.5, 3.5, 4.5]);
}

#[test]
fn python3_legacy_file_matches_python2() {
    let py2 = legacy::parse(
        &emit::legacy_file(Style::Py2, &storages(), &tensors(true)),
        "a",
    );
    let py3 = legacy::parse(
        &emit::legacy_file(Style::Py3, &storages(), &tensors(true)),
        "b",
    );
    assert_eq!(py2.unwrap().tensors, py3.unwrap().tensors);
}

#[test]
fn zip_file_decodes_like_legacy() {
    for prefix in ["archive", "tiny_ngf8_b2"] {
        let zip = emit::zip_file(prefix, &storages(), &tensors(false)).unwrap();
        let sd = load_bytes(&zip, "t.pth").unwrap();
        assert_eq!(sd.format, Format::TorchZip);
        check_common(&sd);
        let legacy = emit::legacy_file(Style::Py3, &storages(), &tensors(false));
        assert_eq!(sd.tensors, torch_zip::parse(&zip, "t").unwrap().tensors);
        assert_eq!(sd.tensors, legacy::parse(&legacy, "l").unwrap().tensors);
    }
}

#[test]
fn params_skip_running_stats() {
    let sd = load_bytes(
        &emit::legacy_file(Style::Py2, &storages(), &tensors(true)),
        "m",
    )
    .unwrap();
    let params: Vec<&str> = sd.params().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        params,
        [
            "fc.weight",
            "ins.bias",
            "model.0.conv2d.weight",
            "model1.0.conv2d.weight"
        ]
    );
    assert!(StateDict::is_running_stat("model.1.running_var"));
    assert!(StateDict::is_running_stat("a.running_mean"));
    assert!(!StateDict::is_running_stat("running_mean.weight"));
}

#[test]
fn safetensors_round_trip_and_atomic_save() {
    let sd = load_bytes(
        &emit::legacy_file(Style::Py2, &storages(), &tensors(true)),
        "m",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let list: Vec<(String, RawTensor)> = sd.tensors.clone().into_iter().collect();
    save_safetensors(&path, &list).unwrap();
    let back = load(&path).unwrap();
    assert_eq!(back.format, Format::Safetensors);
    assert_eq!(back.tensors, sd.tensors);
    // Only the target is left: the temporary file was renamed over it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // A tensor whose bytes do not match its shape fails, leaving no file at all.
    let bad = vec![(
        "x".to_owned(),
        RawTensor {
            dtype: DType::F32,
            shape: vec![3],
            data: vec![0; 5],
        },
    )];
    let path2 = dir.path().join("bad.safetensors");
    assert!(save_safetensors(&path2, &bad).is_err());
    assert!(!path2.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn to_f32_widens_halves_and_doubles() {
    let t = |dtype, data: Vec<u8>| RawTensor {
        dtype,
        shape: vec![2],
        data,
    };
    let h: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect();
    assert_eq!(t(DType::F16, h).to_f32().unwrap(), [1.5, -2.0]);
    let b: Vec<u8> = [0.25f32, 3.0]
        .iter()
        .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
        .collect();
    assert_eq!(t(DType::BF16, b).to_f32().unwrap(), [0.25, 3.0]);
    let d: Vec<u8> = [0.1f64, 1e3].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(t(DType::F64, d).to_f32().unwrap(), [0.1f32, 1000.0]);
    assert!(matches!(
        t(DType::F32, vec![0; 7]).to_f32(),
        Err(WeightsError::BadLength { .. })
    ));
}

#[test]
fn names_and_sizes() {
    assert_eq!(Format::Legacy.to_string(), "PyTorch legacy (pre-1.6)");
    assert_eq!(Format::TorchZip.to_string(), "PyTorch zip");
    assert_eq!(Format::Safetensors.to_string(), "safetensors");
    assert_eq!(DType::BF16.to_string(), "bf16");
    assert_eq!(DType::I64.size_in_bytes(), 8);
    assert_eq!(DType::Bool.size_in_bytes(), 1);
}

#[test]
fn load_reports_the_path() {
    let err = load(std::path::Path::new("/nonexistent/21styles.model")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/21styles.model: "),
        "{err}"
    );
}

#[test]
fn protocol_0_text_opcodes() {
    // (I1 \n L5L \n F1.5 \n S'a\n' \n Vcaf\u00e9 \n I01 t p0 0 g0 .
    let p = b"(I1\nL-5L\nF1.5\nS'a\\n'\nVcaf\\u00e9\nI01\ntp0\n0g0\n.";
    let loaded = pickle::load(p, 0, "p0", 0).unwrap();
    assert_eq!(loaded.end, p.len());
    let items = loaded.value.as_seq().unwrap().to_vec();
    assert!(matches!(items[0], Value::Int(1)));
    assert!(matches!(items[1], Value::Int(-5)));
    assert!(matches!(items[2], Value::Float(f) if f == 1.5));
    assert_eq!(items[3].as_str(), Some("a\n"));
    assert_eq!(items[4].as_str(), Some("café"));
    assert!(matches!(items[5], Value::Bool(true)));
}

#[test]
fn python2_latin1_strings_and_binstring() {
    // BINSTRING (T) with a non-UTF-8 byte decodes as latin-1; LONG1 of 2 bytes is negative.
    let p = b"\x80\x02(T\x03\x00\x00\x00ab\xe9\x8a\x02\x00\x80t.";
    let v = pickle::load(p, 0, "p", 0).unwrap().value;
    let items = v.as_seq().unwrap();
    assert_eq!(items[0].as_str(), Some("abé"));
    assert!(matches!(items[1], Value::Int(-32768)));
}

// ---- parity with files written by PyTorch itself ----
// tests/fixtures/parity/ is generated by tools/make_fixtures.py (PyTorch 2.x for the zip,
// legacy-py3 and safetensors files; tools/legacy_py2.py emits the Python 2 / PyTorch 0.2
// layout, including a transposed view into a padded storage). `<name>.json` lists every key
// with its shape.

const PARITY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/parity");

fn parity(name: &str) -> Option<[std::path::PathBuf; 5]> {
    let dir = std::path::Path::new(PARITY);
    let paths = [
        dir.join(format!("{name}.pth")),
        dir.join(format!("{name}_legacy_py3.model")),
        dir.join(format!("{name}_legacy_py2.model")),
        dir.join(format!("{name}.safetensors")),
        dir.join(format!("{name}.json")),
    ];
    paths.iter().all(|p| p.exists()).then_some(paths)
}

fn listed_shapes(json: &std::path::Path) -> BTreeMap<String, Vec<usize>> {
    let text = std::fs::read_to_string(json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["keys"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            let shape = s
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize);
            (k.clone(), shape.collect())
        })
        .collect()
}

#[test]
fn pytorch_written_files_decode_identically() {
    let mut checked = 0;
    for name in ["tiny_ngf8_b2", "tiny_ngf16_b1"] {
        let Some([zip, py3, py2, st, json]) = parity(name) else {
            continue;
        };
        let shapes = listed_shapes(&json);
        let zip = load(&zip).unwrap();
        assert_eq!(zip.format, Format::TorchZip);
        let zip_shapes: BTreeMap<String, Vec<usize>> = zip
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.shape.clone()))
            .collect();
        assert_eq!(
            zip_shapes, shapes,
            "{name}: keys or shapes differ from the listing"
        );
        for path in [py3, py2] {
            let legacy = load(&path).unwrap();
            assert_eq!(legacy.format, Format::Legacy);
            assert!(legacy.tensors.keys().any(|k| StateDict::is_running_stat(k)));
            // Same keys, dtypes, shapes and bit-identical data.
            assert_eq!(legacy.tensors, zip.tensors, "{}", path.display());
        }
        // safetensors cannot hold aliases: the file keeps one key per shared tensor.
        let st = load(&st).unwrap();
        assert_eq!(st.format, Format::Safetensors);
        assert!(
            st.tensors.len() >= zip.params().count() / 2,
            "{name}: too few tensors"
        );
        for (k, t) in &st.tensors {
            let z = &zip.tensors[k];
            assert_eq!((t.dtype, &t.shape), (z.dtype, &z.shape), "{k}");
            let bits = |t: &RawTensor| {
                t.to_f32()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(t), bits(z), "{name}: {k} differs");
        }
        checked += 1;
    }
    if checked == 0 {
        eprintln!("skipped: no PyTorch-written fixtures in {PARITY}");
    }
}

// ---- fuzzing seeds ----

/// Writes the seed corpora of `fuzz/` (run on demand:
/// `cargo test --release --test loader -- --ignored write_fuzz_seeds`).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        assert!(bytes.len() < 64 * 1024, "{name} is too large for a seed");
        for dir in [target, "load_bytes"] {
            let dir = root.join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    };
    let dtypes = [
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I32,
        DType::I16,
        DType::I8,
        DType::U8,
        DType::Bool,
    ];
    let mut typed: Vec<Storage> = dtypes
        .iter()
        .enumerate()
        .map(|(i, &dtype)| Storage {
            key: format!("{i}"),
            dtype,
            data: (0..4 * dtype.size_in_bytes())
                .map(|b| b as u8 % 2)
                .collect(),
        })
        .collect();
    typed.push(Storage::f32("f", &[1.0, 2.0, 3.0, 4.0]));
    let typed_tensors: Vec<Tensor> = (0..typed.len())
        .map(|i| Tensor::contiguous(&format!("t{i}.weight"), i, &[2, 2]))
        .collect();
    for style in [Style::Py2, Style::Py3] {
        let tag = format!("{style:?}").to_lowercase();
        write(
            "legacy",
            &format!("{tag}_views.model"),
            &emit::legacy_file(style, &storages(), &tensors(true)),
        );
        write(
            "legacy",
            &format!("{tag}_dtypes.model"),
            &emit::legacy_file(style, &typed, &typed_tensors),
        );
        write(
            "legacy",
            &format!("{tag}_empty.model"),
            &emit::legacy_file(style, &[], &[]),
        );
    }
    write(
        "zip",
        "archive.pth",
        &emit::zip_file("archive", &storages(), &tensors(false)).unwrap(),
    );
    write(
        "zip",
        "stem.pth",
        &emit::zip_file("tiny", &typed, &typed_tensors).unwrap(),
    );
    let sd = load_bytes(
        &emit::legacy_file(Style::Py2, &storages(), &tensors(true)),
        "m",
    )
    .unwrap();
    let list: Vec<(String, RawTensor)> = sd.tensors.into_iter().collect();
    let dir = root.join("load_bytes");
    save_safetensors(&dir.join("small.safetensors"), &list).unwrap();
}
