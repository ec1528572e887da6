//! OpenCL backend: batched LZ_EXT3 compression, batched decompression and FNV-1a 64, on one or more
//! devices. Design and numbers: `docs/GPU.md`; kernels: `kernels/*.cl`.
//!
//! - [`list_devices`] numbers every OpenCL device (the numbering `GPU_DEVICE` indices use).
//! - [`Gpu::open`] opens the devices `GPU_DEVICE` names and builds the kernels on each.
//! - Batch calls split their frames round-robin over the devices (a thread per device) and return
//!   results in input order. Every frame is encoded on its own, so the bytes never depend on the device
//!   count or on scheduling.
//!
//! Every OpenCL failure (no library, no platform, build error, out of memory) is an `Error::Gpu` with
//! one line of text; nothing here panics on a missing or broken OpenCL installation. Choosing the CPU
//! codec when this fails (`GPU_FALLBACK_ENABLED`, `FORCE_CPU_MODE`) is the caller's business.

pub use decoder::GpuDecoder;
#[allow(unsafe_code)]
mod cl;
mod compress;
mod decoder;
mod decompress;
mod decompress_sb;
mod device;
mod fnv;
mod icd;
pub mod program;

pub use icd::{gpu_compute_units, known_match, probe_child_main};

use crate::config::Config;
use crate::error::{Error, Result};
use device::Device;

/// One OpenCL device as listed by [`list_devices`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Position in [`list_devices`]: platform order, then device order.
    pub index: usize,
    pub platform: String,
    pub name: String,
    /// "GPU", "CPU", "ACCELERATOR" or "OTHER".
    pub kind: String,
    pub compute_units: u32,
    /// Bytes of global memory.
    pub global_mem: u64,
}

/// Every OpenCL device of every platform. `Err` when OpenCL cannot be loaded or has no platform.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    Ok(device::enumerate()?.into_iter().map(|f| f.info).collect())
}

/// Names of the compression stages in [`Timings::stages_ns`].
pub const COMPRESS_STAGES: [&str; 8] = [
    "clear+build",
    "anchor",
    "merge",
    "link",
    "find",
    "parse",
    "plan",
    "emit",
];

/// Device times of a batch call, from OpenCL profiling events: per device, the span from the first
/// upload to the last, from the first kernel command to the last, and from the first download to the
/// last, summed over launches; for several devices the largest value among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub upload_ns: u64,
    pub kernel_ns: u64,
    pub download_ns: u64,
    /// Bytes given to the kernels and bytes they produced.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Compression: run time of each stage, [`COMPRESS_STAGES`] (exact with one queue,
    /// `CLC_GPU_QUEUES=1`; with two, a stage's span may hold the other launch's kernels);
    /// LZ_EXT3_SB decompression: [0] is the walk's, [1] the walk and pass 1, within `kernel_ns`; [2] not a
    /// time: the bytes still pending after pass 1 (with `CLC_GPU_SB_STATS=1`).
    pub stages_ns: [u64; 8],
    /// LZ_EXT3_SB decompression only: pointer-jumping passes launched, summed over batches.
    pub rounds: u64,
    /// Compression: per call, from the start of its first launch's first command after the uploads to
    /// the end of its last launch's last kernel, summed over calls: the device time of the kernels
    /// when launches on two queues overlap (`kernel_ns` sums each launch's own span, so it counts
    /// overlapping time twice).
    pub kernel_wall_ns: u64,
}

impl Timings {
    fn merge_parallel(&mut self, o: &Timings) {
        self.upload_ns = self.upload_ns.max(o.upload_ns);
        self.kernel_ns = self.kernel_ns.max(o.kernel_ns);
        self.download_ns = self.download_ns.max(o.download_ns);
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.rounds = self.rounds.max(o.rounds);
        self.kernel_wall_ns = self.kernel_wall_ns.max(o.kernel_wall_ns);
        for (a, b) in self.stages_ns.iter_mut().zip(o.stages_ns) {
            *a = (*a).max(b);
        }
    }
}

/// Splits `n` items into launches of at most `batch` items and `budget` bytes (`size(i)` bytes each;
/// a lone larger item gets a launch of its own). With `halves` (a device with two queues) a device share
/// that fits one launch is still cut in two, so that two launches can overlap on the two queues; with
/// one queue it is not (two launches one after the other would only add a launch's tail).
pub(crate) fn launches(
    n: usize,
    batch: usize,
    budget: usize,
    halves: bool,
    size: impl Fn(usize) -> usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let (mut j, mut bytes) = (i, 0);
        while j < n && j - i < batch.max(1) && (j == i || bytes + size(j) <= budget) {
            bytes += size(j);
            j += 1;
        }
        out.push(i..j);
        i = j;
    }
    if halves && out.len() == 1 && n >= 2 {
        out = vec![0..n / 2, n / 2..n];
    }
    out
}

/// The opened devices, each with its context, queue and built kernels. `Send + Sync`: batch calls may
/// come from several threads; calls on the same device run one after the other.
pub struct Gpu {
    devices: Vec<Device>,
    compress_batch: usize,
    decompress_batch: usize,
}

impl Gpu {
    /// Opens the device(s) chosen by `cfg.gpu_device`:
    /// - `"auto"`: every GPU-type device (one or several); error if there is none;
    /// - `"all"`: every GPU-type device, or every device of any type when there is no GPU
    ///   (so two PoCL CPU devices can be driven together);
    /// - an index (`"1"`) or a comma list (`"0,1"`) from [`list_devices`], any type;
    /// - otherwise a case-insensitive substring of a device or platform name: the first match, any type.
    pub fn open(cfg: &Config) -> Result<Gpu> {
        let t0 = std::time::Instant::now();
        if !icd::prepare(&cfg.gpu_device) {
            return Err(Error::Gpu(format!(
                "no OpenCL driver has a device for GPU_DEVICE = {:?} (set it to an index to use another)",
                cfg.gpu_device
            )));
        }
        let found = device::enumerate()?;
        crate::diag::trace::span("gpu: OpenCL platforms listed", t0, 0);
        let chosen = device::choose(&found, &cfg.gpu_device)?;
        Self::open_found(&found, &chosen, cfg)
    }

    /// Opens exactly the devices at `indices` of [`list_devices`].
    pub fn open_devices(cfg: &Config, indices: &[usize]) -> Result<Gpu> {
        let found = device::enumerate()?;
        if let Some(i) = indices.iter().find(|&&i| i >= found.len()) {
            return Err(Error::Gpu(format!(
                "no OpenCL device {i} ({} found)",
                found.len()
            )));
        }
        Self::open_found(&found, indices, cfg)
    }

    fn open_found(found: &[device::Found], indices: &[usize], cfg: &Config) -> Result<Gpu> {
        if indices.is_empty() {
            return Err(Error::Gpu("no OpenCL device chosen".into()));
        }
        let devices = indices
            .iter()
            .map(|&i| Device::open(&found[i], cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Gpu {
            devices,
            compress_batch: cfg.compressor_batch_size.max(1),
            decompress_batch: cfg.decompressor_batch_size.max(1),
        })
    }

    /// "NAME (PLATFORM)" for one device, "N devices: A (P); B (P)" for several.
    pub fn describe(&self) -> String {
        let one = |d: &Device| format!("{} ({})", d.info.name, d.info.platform);
        match self.devices.as_slice() {
            [d] => one(d),
            ds => format!(
                "{} devices: {}",
                ds.len(),
                ds.iter().map(one).collect::<Vec<_>>().join("; ")
            ),
        }
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// The opened devices, in the order batches are dealt to them.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.devices.iter().map(|d| d.info.clone()).collect()
    }

    /// The codec [`Gpu::compress_batch`] writes: LZ_EXT3_SB (codec 3) in sub-blocks of SUBBLOCK_SIZE,
    /// as the CPU encoder does (`Config::frame_codec`), or plain LZ_EXT3 (codec 1) with SUBBLOCK_SIZE = 0.
    pub fn compress_codec(&self) -> crate::codec::Codec {
        match self.devices.first().map_or(0, |d| d.tuning.sb_log) {
            0 => crate::codec::Codec::LzExt3,
            _ => crate::codec::Codec::LzExt3Sb,
        }
    }

    /// Encodes each frame (at most 16 MiB) in [`Gpu::compress_codec`]. Each output is one valid frame of
    /// that codec that the CPU decoder turns back into exactly the frame.
    pub fn compress_batch(&self, frames: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        self.compress_batch_timed(frames).map(|(o, _)| o)
    }

    /// [`Gpu::compress_batch`] with the device times (for benchmarks).
    pub fn compress_batch_timed(&self, frames: &[&[u8]]) -> Result<(Vec<Vec<u8>>, Timings)> {
        self.spread(frames, |d, part, t| {
            compress::run(d, part, self.compress_batch, t).map(|o| self.with_mid_points(part, o))
        })
    }

    /// The encoder's LZ_EXT3_SB frames with the mid-points the CPU encoder would write (format 6,
    /// FORMAT.md 2.2), added on the CPU: the kernels write none.
    fn with_mid_points(&self, frames: &[&[u8]], out: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        use rayon::prelude::*;
        if self.compress_codec() != crate::codec::Codec::LzExt3Sb {
            return out;
        }
        out.into_par_iter()
            .zip(frames.par_iter())
            .map(|(o, f)| crate::codec::lz_ext3_sb::with_mid_points(o, f.len()))
            .collect()
    }

    /// [`Gpu::compress_batch_timed`] on device `dev` alone (0-based, in [`Gpu::devices`] order). The
    /// bytes are the same on every device.
    pub fn compress_batch_on(
        &self,
        dev: usize,
        frames: &[&[u8]],
    ) -> Result<(Vec<Vec<u8>>, Timings)> {
        let d = self
            .devices
            .get(dev)
            .ok_or_else(|| Error::Gpu(format!("no opened device {dev}")))?;
        let mut t = Timings::default();
        let out = compress::run(d, frames, self.compress_batch, &mut t)?;
        Ok((self.with_mid_points(frames, out), t))
    }

    /// Decodes each `(encoded, raw_len)` into exactly `raw_len` bytes. The outer `Err` is an OpenCL
    /// failure; a malformed frame gives an inner `Err` for that frame only.
    pub fn decompress_batch(&self, frames: &[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>> {
        self.decompress_batch_timed(frames).map(|(o, _)| o)
    }

    /// [`Gpu::decompress_batch`] with the device times (for benchmarks).
    pub fn decompress_batch_timed(
        &self,
        frames: &[(&[u8], usize)],
    ) -> Result<(Vec<Result<Vec<u8>>>, Timings)> {
        self.spread(frames, |d, part, t| {
            decompress::run(d, part, self.decompress_batch, t)
        })
    }

    /// Decodes each LZ_EXT3_SB frame `(stored bytes, raw_len)` (codec 3) into exactly `raw_len` bytes,
    /// every sub-block of a launch at once. The outer `Err` is an OpenCL failure; a malformed frame (its
    /// table, or any of its sub-blocks) gives an inner `Err` for that frame only.
    pub fn decompress_sb_batch(&self, frames: &[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>> {
        self.decompress_sb_batch_timed(frames).map(|(o, _)| o)
    }

    /// [`Gpu::decompress_sb_batch`] with the device times (for benchmarks).
    pub fn decompress_sb_batch_timed(
        &self,
        frames: &[(&[u8], usize)],
    ) -> Result<(Vec<Result<Vec<u8>>>, Timings)> {
        self.spread(frames, |d, part, t| {
            decompress_sb::run(d, part, self.decompress_batch, t)
        })
    }

    /// FNV-1a 64 of each buffer; equal to `crate::hash::fnv1a64`.
    pub fn fnv1a64_batch(&self, bufs: &[&[u8]]) -> Result<Vec<u64>> {
        self.fnv1a64_batch_timed(bufs).map(|(o, _)| o)
    }

    /// [`Gpu::fnv1a64_batch`] with the device times (for benchmarks).
    pub fn fnv1a64_batch_timed(&self, bufs: &[&[u8]]) -> Result<(Vec<u64>, Timings)> {
        self.spread(bufs, fnv::run)
    }

    /// Deals `items` round-robin to the devices, runs `work` on each (a thread per device when there
    /// are several) and puts the results back in input order.
    fn spread<I, O, W>(&self, items: &[I], work: W) -> Result<(Vec<O>, Timings)>
    where
        I: Copy + Sync,
        O: Send,
        W: Fn(&Device, &[I], &mut Timings) -> Result<Vec<O>> + Sync,
    {
        let mut timings = Timings::default();
        if items.is_empty() {
            return Ok((Vec::new(), timings));
        }
        let nd = self.devices.len().min(items.len());
        if nd == 1 {
            let out = work(&self.devices[0], items, &mut timings)?;
            return Ok((out, timings));
        }
        let parts: Vec<Vec<I>> = (0..nd)
            .map(|d| items.iter().skip(d).step_by(nd).copied().collect())
            .collect();
        let results: Vec<Result<(Vec<O>, Timings)>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .zip(&self.devices)
                .map(|(part, dev)| {
                    let work = &work;
                    s.spawn(move || {
                        let mut t = Timings::default();
                        work(dev, part, &mut t).map(|o| (o, t))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Gpu("a device thread panicked".into())))
                })
                .collect()
        });
        let mut per_dev = Vec::with_capacity(nd);
        for r in results {
            let (o, t) = r?;
            timings.merge_parallel(&t);
            per_dev.push(o.into_iter());
        }
        let mut out = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            match per_dev[i % nd].next() {
                Some(o) => out.push(o),
                None => return Err(Error::Gpu("a device returned too few results".into())),
            }
        }
        Ok((out, timings))
    }
}

#[cfg(test)]
mod tests {
    use super::device::{choose, Found, Tuning};
    use super::*;

    fn found(kinds: &[(&str, &str)]) -> Vec<Found> {
        kinds
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| Found {
                info: DeviceInfo {
                    index: i,
                    platform: "P".into(),
                    name: name.to_string(),
                    kind: kind.to_string(),
                    compute_units: 1,
                    global_mem: 1,
                },
                id: std::ptr::null_mut(),
            })
            .collect()
    }

    #[test]
    fn device_choice_follows_gpu_device() {
        let cpu_only = found(&[("pthread-a", "CPU"), ("pthread-b", "CPU")]);
        assert!(choose(&cpu_only, "auto").is_err());
        assert_eq!(choose(&cpu_only, "all").unwrap(), vec![0, 1]);
        assert_eq!(choose(&cpu_only, "1").unwrap(), vec![1]);
        assert_eq!(choose(&cpu_only, "1, 0").unwrap(), vec![1, 0]);
        assert_eq!(choose(&cpu_only, "PTHREAD").unwrap(), vec![0]);
        assert!(choose(&cpu_only, "2").is_err());
        assert!(choose(&cpu_only, "h100").is_err());
        let mixed = found(&[("cpu", "CPU"), ("H100", "GPU"), ("H100 b", "GPU")]);
        assert_eq!(choose(&mixed, "auto").unwrap(), vec![1, 2]);
        assert_eq!(choose(&mixed, "all").unwrap(), vec![1, 2]);
        assert_eq!(choose(&mixed, "0").unwrap(), vec![0]);
        assert!(choose(&[], "all").is_err());
    }

    /// PoCL 4-5 aborted (`pocl_release_dlhandle_cache`) when two launches of one kernel with
    /// different grid sizes were in flight at once, as our two queues made them on the H200 machine's
    /// PoCL. A CPU-type device gets one queue; batches of different sizes from two threads still work.
    #[test]
    fn cpu_devices_never_overlap_launches() {
        let Some(idx) = list_devices()
            .ok()
            .and_then(|d| d.into_iter().find(|x| x.kind == "CPU").map(|x| x.index))
        else {
            assert!(
                std::env::var("CLC_REQUIRE_OPENCL").as_deref() != Ok("1"),
                "CLC_REQUIRE_OPENCL=1 but no OpenCL CPU device"
            );
            eprintln!("SKIP: no OpenCL CPU device");
            return;
        };
        let gpu = Gpu::open_devices(&Config::default(), &[idx]).unwrap();
        assert!(gpu.devices[0].k.lock().queue2.is_none());
        // lz_build_l builds the tables unless CLC_GPU_BUILD=4 asks for lz_build4.
        let want_l = crate::diag::knob("CLC_GPU_BUILD", 0..=4, 0) != 4;
        assert_eq!(gpu.devices[0].k.lock().build_l.is_some(), want_l);
        let data: Vec<Vec<u8>> = (0..8u8)
            .map(|i| {
                (0..40_000 + 9_000 * i as usize)
                    .map(|j| (j / 7) as u8 ^ i)
                    .collect()
            })
            .collect();
        std::thread::scope(|s| {
            for (a, b) in [(0, 3), (3, 8)] {
                let (gpu, data) = (&gpu, &data);
                s.spawn(move || {
                    let frames: Vec<&[u8]> = data[a..b].iter().map(|d| d.as_slice()).collect();
                    for _ in 0..3 {
                        let out = gpu.compress_batch(&frames).unwrap();
                        for (o, f) in out.iter().zip(&frames) {
                            assert_eq!(
                                crate::codec::lz_ext3_sb::decompress(o, f.len()).unwrap(),
                                *f
                            );
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn launches_cover_everything_in_order() {
        assert!(launches(0, 4, 100, true, |_| 1).is_empty());
        assert_eq!(launches(1, 4, 100, true, |_| 1), vec![0..1]);
        assert_eq!(launches(3, 16, 100, true, |_| 1), vec![0..1, 1..3]);
        assert_eq!(launches(3, 16, 100, false, |_| 1), vec![0..3]);
        assert_eq!(launches(5, 2, 100, true, |_| 1), vec![0..2, 2..4, 4..5]);
        assert_eq!(launches(5, 2, 100, false, |_| 1), vec![0..2, 2..4, 4..5]);
        assert_eq!(launches(3, 16, 10, true, |_| 6), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn literal_block_is_valid() {
        for n in [0usize, 1, 14, 15, 16, 269, 270, 271, 5000] {
            let d: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let b = compress::literal_block(&d);
            assert!(b.len() <= compress::bound(n));
            assert_eq!(crate::codec::lz_ext3::decompress(&b, n).unwrap(), d);
        }
    }

    #[test]
    fn tuning_depends_on_config_only() {
        let t = Tuning::new(&Config::default());
        assert_eq!(
            (t.wg, t.lhash_log, t.cands, t.good, t.min_match),
            (64, 12, 2, 64, 5)
        );
        let many = Tuning::new(&Config {
            hash_candidates: 8,
            good_enough_match: 1000,
            ..Config::default()
        });
        // The table fills 32 KiB; lz_find's far offsets and lz_anchor's counts add about 1 KiB
        // (devices with less local memory are refused at open; every current GPU has 48 KiB).
        assert!(t.local_bytes() <= 33 << 10 && many.local_bytes() <= 33 << 10);
        assert_eq!(many.good, 255);
    }
}
