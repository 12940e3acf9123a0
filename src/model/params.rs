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

/// Two dense layers with a ReLU between them.
pub struct Mlp {
    first: Linear,
    second: Linear,
}

impl Mlp {
    /// `fan_in → hidden → fan_out`.
    pub fn new(
        ps: &mut ParamStore,
        name: &str,
        fan_in: usize,
        hidden: usize,
        fan_out: usize,
    ) -> Result<Self> {
        Ok(Mlp {
            first: Linear::new(ps, &format!("{name}.0"), fan_in, hidden)?,
            second: Linear::new(ps, &format!("{name}.1"), hidden, fan_out)?,
        })
    }

    /// Applies both layers.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.first.forward(x)?.relu().map_err(ml)?;
        self.second.forward(&h)
    }
}
