//! Trainable parameters: a named registry, seeded initialisation, and the
//! layers built from it. Weights go in and out as safetensors bytes.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Maps candle errors into the crate error.
pub(crate) fn ml(e: candle_core::Error) -> Error {
    Error::Model(e)
}

/// Named parameters of a network, in creation order.
pub struct ParamStore {
    device: Device,
    vars: Vec<(String, Var)>,
    rng: ChaCha8Rng,
}

impl ParamStore {
    /// An empty registry; `rng` seeds every initial value (candle's own random
    /// functions are not seedable on CPU).
    pub fn new(device: Device, rng: ChaCha8Rng) -> Self {
        ParamStore {
            device,
            vars: Vec::new(),
            rng,
        }
    }

    /// The device parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A new parameter with values uniform in `(-bound, bound)`.
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f32) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| self.rng.gen_range(-bound..bound)).collect();
        let t = Tensor::from_vec(data, shape, &self.device).map_err(ml)?;
        let var = Var::from_tensor(&t).map_err(ml)?;
        self.vars.push((name.to_string(), var.clone()));
        Ok(var)
    }

    /// A new parameter with every value `value` (layer-norm gains and biases).
    pub fn constant(&mut self, name: &str, shape: &[usize], value: f32) -> Result<Var> {
        let t = Tensor::full(value, shape, &self.device).map_err(ml)?;
        let var = Var::from_tensor(&t).map_err(ml)?;
        self.vars.push((name.to_string(), var.clone()));
        Ok(var)
    }

    /// All parameters (for the optimiser).
    pub fn vars(&self) -> Vec<Var> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }

    /// The values of parameter `name`, flattened row-major (on the CPU).
    pub(crate) fn flat(&self, name: &str) -> Result<Vec<f32>> {
        let (_, var) = self
            .vars
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| Error::InvalidArgument(format!("no parameter '{name}'")))?;
        var.as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(ml)
    }

    /// Sets parameter `name` to `values` (its shape kept).
    #[cfg(test)]
    pub(crate) fn set_flat(&self, name: &str, values: Vec<f32>) -> Result<()> {
        let (_, var) = self
            .vars
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| Error::InvalidArgument(format!("no parameter '{name}'")))?;
        Tensor::from_vec(values, var.shape(), &self.device)
            .and_then(|t| var.set(&t))
            .map_err(ml)
    }

    /// Serialises every parameter as safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let tensors: HashMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(n, v)| {
                Ok((
                    n.clone(),
                    v.as_tensor().to_device(&Device::Cpu).map_err(ml)?,
                ))
            })
            .collect::<Result<_>>()?;
        safetensors::serialize(&tensors, None)
            .map_err(|e| Error::InvalidArgument(format!("safetensors: {e}")))
    }

    /// Loads values saved by [`ParamStore::to_bytes`] into the same-shaped parameters.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<()> {
        let bad = |d: String| Error::corruption("model weights", d);
        let loaded = candle_core::safetensors::load_buffer(bytes, &self.device)
            .map_err(|e| bad(e.to_string()))?;
        for (name, var) in &self.vars {
            let t = loaded
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor '{name}'")))?;
            if t.dims() != var.dims() || t.dtype() != DType::F32 {
                return Err(bad(format!(
                    "tensor '{name}' has shape {:?}, expected {:?}",
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(t).map_err(ml)?;
        }
        Ok(())
    }
}

/// A dense layer `y = x Wᵀ + b`.
pub struct Linear {
    w: Var,
    b: Var,
}

impl Linear {
    /// PyTorch's default initialisation: uniform in ±1/√fan_in.
    pub fn new(ps: &mut ParamStore, name: &str, fan_in: usize, fan_out: usize) -> Result<Self> {
        let bound = 1.0 / (fan_in as f32).sqrt();
        Ok(Linear {
            w: ps.uniform(&format!("{name}.weight"), &[fan_out, fan_in], bound)?,
            b: ps.uniform(&format!("{name}.bias"), &[fan_out], bound)?,
        })
    }

    /// Its weight `[fan_out, fan_in]` and bias `[fan_out]`.
    pub(crate) fn parts(&self) -> (&Tensor, &Tensor) {
        (self.w.as_tensor(), self.b.as_tensor())
    }

    /// Applies the layer to `[batch, fan_in]` or `[batch, len, fan_in]`
    /// (the latter as one `[batch·len, fan_in]` product).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let wt = self.w.as_tensor().t().map_err(ml)?;
        if let Ok((b, t, d)) = x.dims3() {
            let out = wt.dim(1).map_err(ml)?;
            return x
                .reshape((b * t, d))
                .and_then(|x| x.matmul(&wt))
                .and_then(|y| y.broadcast_add(self.b.as_tensor()))
                .and_then(|y| y.reshape((b, t, out)))
                .map_err(ml);
        }
        x.matmul(&wt)
            .and_then(|y| y.broadcast_add(self.b.as_tensor()))
            .map_err(ml)
    }
}

/// Dense layers with a ReLU between each pair (none after the last); layer
/// `i` is named `{name}.{i}`.
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// `widths[0] → widths[1] → … → widths[last]`; at least two widths.
    pub fn new(ps: &mut ParamStore, name: &str, widths: &[usize]) -> Result<Self> {
        assert!(
            widths.len() >= 2,
            "an MLP needs an input and an output width"
        );
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(ps, &format!("{name}.{i}"), w[0], w[1]))
            .collect::<Result<_>>()?;
        Ok(Mlp { layers })
    }

    /// Subtracts `delta` (`[out]`) from the last layer's bias, so every
    /// output moves by `−delta`.
    pub fn shift_output(&self, delta: &Tensor) -> Result<()> {
        let last = self.layers.last().expect("at least one layer");
        let b = (last.b.as_tensor() - delta).map_err(ml)?;
        last.b.set(&b).map_err(ml)
    }

    /// Applies every layer.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (last, hidden) = self.layers.split_last().expect("at least one layer");
        let mut h = x.clone();
        for l in hidden {
            h = l.forward(&h)?.relu().map_err(ml)?;
        }
        last.forward(&h)
    }
}
