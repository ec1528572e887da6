//! The GPU as the frame cache's batch decoder (extract and mount). The device is opened on first use, so
//! that a mount opens it in the serving process after it has forked. Every GPU result is checked against
//! the frame's length and checksum; a frame that fails, or a batch whose launch fails, is decoded on the
//! CPU instead and counted.

use super::Gpu;
use crate::cache::{BatchDecoder, CodecBatch, CpuDecoder, StoredFrame};
use crate::codec::Codec;
use crate::config::Config;
use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub struct GpuDecoder {
    cfg: Config,
    quiet: bool,
    gpu: OnceLock<Option<Gpu>>,
    /// Frames decoded on the GPU and accepted.
    pub gpu_frames: AtomicU64,
    /// Frames sent to the GPU but decoded on the CPU (failed check or failed launch).
    pub cpu_frames: AtomicU64,
}

impl GpuDecoder {
    /// A decoder that opens the device chosen by `cfg` on first use; `gpu` may be one opened already.
    pub fn new(cfg: &Config, gpu: Option<Gpu>, quiet: bool) -> Self {
        let cell = OnceLock::new();
        if let Some(g) = gpu {
            let _ = cell.set(Some(g));
        }
        GpuDecoder {
            cfg: cfg.clone(),
            quiet,
            gpu: cell,
            gpu_frames: AtomicU64::new(0),
            cpu_frames: AtomicU64::new(0),
        }
    }

    fn device(&self) -> Option<&Gpu> {
        self.gpu
            .get_or_init(|| match Gpu::open(&self.cfg) {
                Ok(g) => Some(g),
                Err(e) => {
                    if !self.quiet {
                        crate::diag::note(&format!(
                            "no GPU used for decoding ({e}); decoding on the CPU"
                        ));
                    }
                    None
                }
            })
            .as_ref()
    }
}

impl BatchDecoder for GpuDecoder {
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
        let Some(gpu) = self.device() else {
            return CpuDecoder.decode_batch(batch);
        };
        let sent = AtomicU64::new(0);
        let ok = AtomicU64::new(0);
        let adapter = CodecBatch {
            codec: Codec::LzExt3,
            decode: |frames: &[(&[u8], usize)]| {
                sent.fetch_add(frames.len() as u64, Ordering::Relaxed);
                let r = gpu.decompress_batch(frames)?;
                ok.fetch_add(
                    r.iter().filter(|x| x.is_ok()).count() as u64,
                    Ordering::Relaxed,
                );
                Ok(r)
            },
        };
        let out = adapter.decode_batch(batch);
        let (sent, ok) = (sent.into_inner(), ok.into_inner());
        self.gpu_frames.fetch_add(ok, Ordering::Relaxed);
        self.cpu_frames.fetch_add(sent - ok, Ordering::Relaxed);
        out
    }
}
