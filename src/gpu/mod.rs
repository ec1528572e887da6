//! OpenCL backend: batched LZ_EXT3 compression, FNV-1a 64 and batched decompression.
//! PLACEHOLDER until the OpenCL code lands: `Gpu::open` always fails, so every caller takes the CPU path.

use crate::config::Config;
use crate::error::{Error, Result};

pub struct DeviceInfo {
    pub index: usize,
    pub platform: String,
    pub name: String,
    pub kind: String,
    pub compute_units: u32,
    pub global_mem: u64,
}

pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    Err(Error::Gpu("OpenCL support is not built yet".into()))
}

pub struct Gpu {
    _private: (),
}

impl Gpu {
    pub fn open(_cfg: &Config) -> Result<Gpu> {
        Err(Error::Gpu("OpenCL support is not built yet".into()))
    }
    pub fn describe(&self) -> String {
        String::new()
    }
    pub fn device_count(&self) -> usize {
        0
    }
    pub fn compress_batch(&self, _frames: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        Err(Error::Gpu("unavailable".into()))
    }
    pub fn decompress_batch(&self, _frames: &[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>> {
        Err(Error::Gpu("unavailable".into()))
    }
    pub fn fnv1a64_batch(&self, _bufs: &[&[u8]]) -> Result<Vec<u64>> {
        Err(Error::Gpu("unavailable".into()))
    }
}
