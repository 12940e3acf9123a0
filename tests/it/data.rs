//! Loading data folders: formats, dtypes and every validation error a user can meet.

use std::path::Path;

use adasid::Error;
use adasid::data::catalog::{CatalogSpec, generate};
use adasid::data::embeddings::{DataSpec, load, write};
use candle_core::{DType, Device, Tensor};

fn folder() -> (tempfile::TempDir, DataSpec) {
    let dir = tempfile::tempdir().unwrap();
    let data = generate(&CatalogSpec {
        items: 50,
        topics: 4,
        content_dims: vec![8, 6],
        behavior_dim: 4,
        seed: 1,
    });
    let spec = DataSpec::default();
    write(dir.path(), &data, &spec).unwrap();
    (dir, spec)
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn written_folder_loads_back() {
    let (dir, spec) = folder();
    let data = load(dir.path(), &spec).unwrap();
    let again = generate(&CatalogSpec {
        items: 50,
        topics: 4,
        content_dims: vec![8, 6],
        behavior_dim: 4,
        seed: 1,
    });
    assert_eq!(data.keys, again.keys);
    for (a, b) in data
        .content
        .iter()
        .chain([&data.behavior])
        .zip(again.content.iter().chain([&again.behavior]))
    {
        assert_eq!((a.rows, a.dim, &a.data), (b.rows, b.dim, &b.data));
    }
    assert_eq!(data.popularity, again.popularity);
}

fn rewrite(dir: &Path, name: &str, t: Tensor) {
    t.write_npy(dir.join(name)).unwrap();
}

#[test]
fn float64_and_float16_tables_are_accepted() {
    let (dir, spec) = folder();
    let text = Tensor::read_npy(dir.path().join("text.npy")).unwrap();
    rewrite(dir.path(), "text.npy", text.to_dtype(DType::F64).unwrap());
    let attr = Tensor::read_npy(dir.path().join("attr.npy")).unwrap();
    rewrite(dir.path(), "attr.npy", attr.to_dtype(DType::F16).unwrap());
    let data = load(dir.path(), &spec).unwrap();
    assert_eq!(data.content[0].dim, 8);
    assert!(
        (data.content[1].row(0)[0]
            - attr
                .get(0)
                .unwrap()
                .get(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap())
        .abs()
            < 1e-2
    );
}

#[test]
fn bad_tables_are_refused_with_file_and_row() {
    let (dir, spec) = folder();
    let p = dir.path();
    // Fortran order: same header length, flag flipped.
    let bytes = std::fs::read(p.join("text.npy")).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("'fortran_order': False").unwrap();
    let mut fortran = bytes.clone();
    fortran[at..at + 22].copy_from_slice(b"'fortran_order': True ");
    std::fs::write(p.join("text.npy"), &fortran).unwrap();
    let e = message(load(p, &spec).unwrap_err());
    assert!(e.starts_with("text.npy:") && e.contains("Fortran"), "{e}");
    // A header that claims far more rows than the file holds: an error before
    // anything is allocated (this once aborted the process asking for 25.6 GB).
    let mut dict =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (400000000, 16), }".to_string();
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut huge = b"\x93NUMPY\x01\x00".to_vec();
    huge.extend((dict.len() as u16).to_le_bytes());
    huge.extend(dict.as_bytes());
    huge.extend([0u8; 256]);
    std::fs::write(p.join("text.npy"), &huge).unwrap();
    let e = message(load(p, &spec).unwrap_err());
    assert!(
        e.starts_with("text.npy:") && e.contains("but the file holds 256"),
        "{e}"
    );
    std::fs::write(p.join("text.npy"), &bytes).unwrap();

    // Integer dtype.
    rewrite(
        p,
        "attr.npy",
        Tensor::zeros((50, 6), DType::U32, &Device::Cpu).unwrap(),
    );
    let e = message(load(p, &spec).unwrap_err());
    assert!(e.starts_with("attr.npy:") && e.contains("float"), "{e}");

    // NaN in row 7 (1-based).
    let mut v = vec![0.5f32; 50 * 6];
    v[6 * 6 + 2] = f32::NAN;
    rewrite(
        p,
        "attr.npy",
        Tensor::from_vec(v, (50, 6), &Device::Cpu).unwrap(),
    );
    let e = message(load(p, &spec).unwrap_err());
    assert!(e.starts_with("attr.npy:7:") && e.contains("NaN"), "{e}");

    // Wrong row count and wrong rank.
    rewrite(
        p,
        "attr.npy",
        Tensor::zeros((49, 6), DType::F32, &Device::Cpu).unwrap(),
    );
    let e = message(load(p, &spec).unwrap_err());
    assert!(
        e.contains("attr.npy") && e.contains("49 rows") && e.contains("50 items"),
        "{e}"
    );
    rewrite(
        p,
        "attr.npy",
        Tensor::zeros(50, DType::F32, &Device::Cpu).unwrap(),
    );
    assert!(message(load(p, &spec).unwrap_err()).contains("2-D"));

    // Missing file.
    std::fs::remove_file(p.join("attr.npy")).unwrap();
    let e = message(load(p, &spec).unwrap_err());
    assert!(e.starts_with("attr.npy:") && e.contains("not found"), "{e}");
}

#[test]
fn items_file_errors_name_the_line() {
    let (dir, spec) = folder();
    let p = dir.path();
    std::fs::write(p.join("items.txt"), "a\nb\na\n").unwrap();
    let e = message(load(p, &spec).unwrap_err());
    assert!(e.starts_with("items.txt:3:") && e.contains("line 1"), "{e}");
    std::fs::write(p.join("items.txt"), "a\n\nb\n").unwrap();
    assert!(message(load(p, &spec).unwrap_err()).starts_with("items.txt:2:"));
}

#[test]
fn safetensors_tables_by_name() {
    let (dir, mut spec) = folder();
    let p = dir.path();
    let text = Tensor::read_npy(p.join("text.npy")).unwrap();
    let other = Tensor::zeros((50, 3), DType::F32, &Device::Cpu).unwrap();
    let tensors = std::collections::HashMap::from([
        ("emb".to_string(), text.clone()),
        ("other".to_string(), other),
    ]);
    candle_core::safetensors::save(&tensors, p.join("tables.safetensors")).unwrap();
    spec.content[0] = "tables.safetensors:emb".into();
    assert_eq!(
        load(p, &spec).unwrap().content[0].data,
        text.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    spec.content[0] = "tables.safetensors".into();
    let e = message(load(p, &spec).unwrap_err());
    assert!(e.contains("emb, other") && e.contains(":NAME"), "{e}");
    spec.content[0] = "tables.safetensors:nope".into();
    assert!(message(load(p, &spec).unwrap_err()).contains("no tensor named 'nope'"));
}
