//! Item embedding tables: a data folder with `items.txt` (one key per line, the
//! row order of every table) and one table per modality, as `.npy` (float32,
//! float64 or float16, C order) or `.safetensors` (`file.safetensors:tensor`;
//! the tensor name may be left out when the file holds one tensor).
//!
//! Everything is checked on load: 2-D shapes, row counts that agree with
//! `items.txt`, finite values (the error names file and row), and unique keys.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which files of a data folder hold what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSpec {
    /// Item keys, one per line.
    pub items: String,
    /// Content modalities (at least one).
    pub content: Vec<String>,
    /// The behavior embedding table (not normalised: its norm is a signal).
    pub behavior: String,
    /// Interaction counts per item (optional; used when N_norm comes from popularity).
    pub popularity: Option<String>,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            items: "items.txt".into(),
            content: vec!["text.npy".into(), "attr.npy".into()],
            behavior: "behavior.npy".into(),
            popularity: Some("popularity.npy".into()),
        }
    }
}

/// A dense row-major `rows × dim` f32 table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file spec it came from.
    pub source: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub dim: usize,
    /// Values.
    pub data: Vec<f32>,
}

impl Table {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `idx`, gathered into a new table.
    pub fn gather(&self, idx: &[usize]) -> Table {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        idx.iter()
            .for_each(|&i| data.extend_from_slice(self.row(i)));
        Table {
            source: self.source.clone(),
            rows: idx.len(),
            dim: self.dim,
            data,
        }
    }
}

/// A loaded data folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Item keys in row order.
    pub keys: Vec<String>,
    /// Content modality tables.
    pub content: Vec<Table>,
    /// Behavior table.
    pub behavior: Table,
    /// Interaction counts, when the spec names a file and it exists.
    pub popularity: Option<Vec<f32>>,
}

impl Dataset {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// L2 norm of every item's behavior embedding (its behavior-evidence signal).
    pub fn behavior_norms(&self) -> Vec<f32> {
        (0..self.len())
            .map(|i| {
                self.behavior
                    .row(i)
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect()
    }

    /// The items at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            keys: idx.iter().map(|&i| self.keys[i].clone()).collect(),
            content: self.content.iter().map(|t| t.gather(idx)).collect(),
            behavior: self.behavior.gather(idx),
            popularity: self
                .popularity
                .as_ref()
                .map(|p| idx.iter().map(|&i| p[i]).collect()),
        }
    }
}

fn bad(file: &str, message: impl Into<String>) -> Error {
    Error::BadFile {
        file: file.to_string(),
        message: message.into(),
    }
}

/// Refuses an `.npy` file whose header promises more data than the file
/// holds, before a reader allocates what the header says. A header this
/// does not understand is left to the reader's own checks.
fn check_npy_size(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    file.take(4096)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    let Some((header, data_start)) = npy_header(&head) else {
        return Ok(());
    };
    let field = |name: &str, open: char, close: char| -> Option<&str> {
        let rest = &header[header.find(name)? + name.len()..];
        let rest = &rest[rest.find(open)? + 1..];
        Some(&rest[..rest.find(close)?])
    };
    let (Some(descr), Some(shape)) = (field("'descr'", '\'', '\''), field("'shape'", '(', ')'))
    else {
        return Ok(());
    };
    let Ok(width) = descr
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse::<u64>()
    else {
        return Ok(());
    };
    let dims: Vec<u64> = shape
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            d.trim()
                .parse()
                .map_err(|_| format!("shape ({shape}) is not a list of sizes"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let need = dims.iter().try_fold(width, |acc, &d| acc.checked_mul(d));
    let have = size.saturating_sub(data_start);
    match need {
        Some(need) if need <= have => Ok(()),
        _ => Err(format!(
            "the header says shape ({shape}) of {descr}, {} bytes, but the file holds {have}",
            need.map_or("more than 2^64".to_string(), |n| n.to_string())
        )),
    }
}

/// The header text of an `.npy` file and where its data starts.
fn npy_header(head: &[u8]) -> Option<(&str, u64)> {
    if head.get(..6)? != b"\x93NUMPY" {
        return None;
    }
    let (len, start) = match head.get(6)? {
        1 => (
            u16::from_le_bytes(head.get(8..10)?.try_into().ok()?) as usize,
            10,
        ),
        _ => (
            u32::from_le_bytes(head.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
    };
    let text = std::str::from_utf8(head.get(start..start + len)?).ok()?;
    Some((text, (start + len) as u64))
}

/// Reads a 1-D or 2-D numeric array as f32 from `.npy` or `.safetensors[:name]`.
fn read_tensor(dir: &Path, spec: &str) -> Result<Tensor> {
    let (file, name) = match spec.split_once(".safetensors:") {
        Some((stem, name)) => (format!("{stem}.safetensors"), Some(name)),
        None => (spec.to_string(), None),
    };
    let path = dir.join(&file);
    if !path.is_file() {
        return Err(bad(
            &file,
            format!(
                "not found in {} (see the README's data layout)",
                dir.display()
            ),
        ));
    }
    let tensor = if file.ends_with(".safetensors") {
        let mut all = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| bad(&file, format!("not a readable safetensors file: {e}")))?;
        match name {
            Some(n) => all
                .remove(n)
                .ok_or_else(|| bad(&file, format!("no tensor named '{n}'")))?,
            None if all.len() == 1 => all.into_values().next().expect("one tensor"),
            None => {
                let mut names: Vec<String> = all.into_keys().collect();
                names.sort();
                return Err(bad(
                    &file,
                    format!(
                        "holds several tensors ({}); name one as {file}:NAME",
                        names.join(", ")
                    ),
                ));
            }
        }
    } else if file.ends_with(".npy") {
        check_npy_size(&path).map_err(|m| bad(&file, m))?;
        Tensor::read_npy(&path).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("fortran") {
                bad(
                    &file,
                    "Fortran-order arrays are not supported; save with np.ascontiguousarray(a)",
                )
            } else {
                bad(&file, format!("not a readable .npy array: {msg}"))
            }
        })?
    } else {
        return Err(bad(&file, "unknown format: use .npy or .safetensors"));
    };
    match tensor.dtype() {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {}
        other => {
            return Err(bad(
                &file,
                format!("dtype {other:?} is not a float array; use float32, float64 or float16"),
            ));
        }
    }
    tensor
        .to_dtype(DType::F32)
        .map_err(|e| bad(&file, e.to_string()))
}

/// Loads an embedding table and checks it is 2-D with finite values.
pub fn read_table(dir: &Path, spec: &str) -> Result<Table> {
    let t = read_tensor(dir, spec)?;
    let (rows, dim) = t.dims2().map_err(|_| {
        bad(
            spec,
            format!("expected a 2-D array, found shape {:?}", t.dims()),
        )
    })?;
    if dim == 0 {
        return Err(bad(spec, "rows have no columns"));
    }
    let data: Vec<f32> = t
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(|e| bad(spec, e.to_string()))?;
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::Input {
            file: spec.to_string(),
            line: i / dim + 1,
            message: format!(
                "row {} (0-based {}) column {} is {}",
                i / dim + 1,
                i / dim,
                i % dim,
                data[i]
            ),
        });
    }
    Ok(Table {
        source: spec.to_string(),
        rows,
        dim,
        data,
    })
}

/// Loads interaction counts: 1-D (or `[n, 1]`), non-negative, finite.
pub fn read_counts(dir: &Path, spec: &str) -> Result<Vec<f32>> {
    let t = read_tensor(dir, spec).or_else(|e| match e {
        // Integer counts are the common case; read them through f64.
        Error::BadFile { ref message, .. } if message.contains("not a float array") => {
            Tensor::read_npy(dir.join(spec))
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|_| e)
        }
        other => Err(other),
    })?;
    let t = t.flatten_all().map_err(|e| bad(spec, e.to_string()))?;
    let data: Vec<f32> = t.to_vec1().map_err(|e| bad(spec, e.to_string()))?;
    if let Some(i) = data.iter().position(|x| !x.is_finite() || *x < 0.0) {
        return Err(Error::Input {
            file: spec.to_string(),
            line: i + 1,
            message: format!("count {} is not a non-negative number", data[i]),
        });
    }
    Ok(data)
}

/// Reads `items.txt`: one non-empty, unique key per line.
pub fn read_keys(dir: &Path, file: &str) -> Result<Vec<String>> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let key = line.trim_end_matches('\r');
        let err = |message: String| Error::Input {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        if key.trim().is_empty() {
            return Err(err("empty item key".into()));
        }
        if let Some(first) = seen.insert(key, i + 1) {
            return Err(err(format!("item '{key}' already appears on line {first}")));
        }
        keys.push(key.to_string());
    }
    if keys.is_empty() {
        return Err(bad(file, "no items: the file is empty"));
    }
    Ok(keys)
}

/// Writes `data` as a data folder that [`load`] reads back with `spec`
/// (`.npy` float32 tables, `items.txt`, and float32 popularity counts).
pub fn write(dir: &Path, data: &Dataset, spec: &DataSpec) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let items = dir.join(&spec.items);
    std::fs::write(&items, data.keys.join("\n") + "\n").map_err(|e| Error::io(&items, e))?;
    let save = |name: &str, t: &Table| -> Result<()> {
        let path = dir.join(name);
        Tensor::from_slice(&t.data, (t.rows, t.dim), &Device::Cpu)
            .and_then(|x| x.write_npy(&path))
            .map_err(|e| bad(name, e.to_string()))
    };
    if spec.content.len() != data.content.len() {
        return Err(Error::InvalidArgument(
            "the spec names a different number of content tables".into(),
        ));
    }
    for (name, t) in spec.content.iter().zip(&data.content) {
        save(name, t)?;
    }
    save(&spec.behavior, &data.behavior)?;
    if let (Some(name), Some(p)) = (&spec.popularity, &data.popularity) {
        let path = dir.join(name);
        Tensor::from_slice(p, p.len(), &Device::Cpu)
            .and_then(|x| x.write_npy(&path))
            .map_err(|e| bad(name, e.to_string()))?;
    }
    Ok(())
}

/// Loads and cross-checks a data folder.
pub fn load(dir: &Path, spec: &DataSpec) -> Result<Dataset> {
    if spec.content.is_empty() {
        return Err(Error::InvalidArgument(
            "at least one content modality is needed".into(),
        ));
    }
    let keys = read_keys(dir, &spec.items)?;
    let check_rows = |t: &Table| -> Result<()> {
        if t.rows != keys.len() {
            return Err(bad(
                &t.source,
                format!(
                    "has {} rows but {} has {} items",
                    t.rows,
                    spec.items,
                    keys.len()
                ),
            ));
        }
        Ok(())
    };
    let content = spec
        .content
        .iter()
        .map(|s| read_table(dir, s))
        .collect::<Result<Vec<_>>>()?;
    content.iter().try_for_each(check_rows)?;
    let behavior = read_table(dir, &spec.behavior)?;
    check_rows(&behavior)?;
    let popularity = match &spec.popularity {
        Some(p) if dir.join(p.split(':').next().unwrap_or(p)).is_file() => {
            let counts = read_counts(dir, p)?;
            if counts.len() != keys.len() {
                return Err(bad(
                    p,
                    format!(
                        "has {} counts but {} has {} items",
                        counts.len(),
                        spec.items,
                        keys.len()
                    ),
                ));
            }
            Some(counts)
        }
        _ => None,
    };
    Ok(Dataset {
        keys,
        content,
        behavior,
        popularity,
    })
}
