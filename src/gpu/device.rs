//! Finding OpenCL devices, choosing them from `GPU_DEVICE`, and one opened device: its context, queue
//! and the three programs built with the config's `-D` tuning values.

use opencl3::context::Context;
use opencl3::device::{
    Device as ClDevice, CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_CPU,
    CL_DEVICE_TYPE_GPU,
};
use opencl3::kernel::Kernel;
use opencl3::platform::get_platforms;
use opencl3::program::Program;
use opencl3::types::cl_device_id;
use parking_lot::Mutex;

use super::cl::{ClContext, Queue};
use super::DeviceInfo;
use crate::codec::lz_ext3_sb::{MAX_SB_LOG, MIN_SB_LOG};
use crate::codec::Codec;
use crate::config::Config;
use crate::diag;
use crate::error::{Error, Result};

const SRC_COMPRESS: &str = include_str!("../../kernels/lz_ext3_compress.cl");
const SRC_DECOMPRESS: &str = include_str!("../../kernels/lz_ext3_decompress.cl");
const SRC_FNV: &str = include_str!("../../kernels/fnv1a.cl");
const SRC_DECOMPRESS_SB: &str = include_str!("../../kernels/lz_ext3_sb_decompress.cl");

/// A device found by [`enumerate`], with the raw id needed to open it.
pub(crate) struct Found {
    pub info: DeviceInfo,
    pub id: cl_device_id,
}

/// Every device of every platform, numbered in platform order then device order.
pub(crate) fn enumerate() -> Result<Vec<Found>> {
    let platforms = get_platforms().cl("listing OpenCL platforms")?;
    let mut out = Vec::new();
    for p in platforms {
        let pname = p.name().unwrap_or_else(|_| "?".into());
        // A platform without devices answers CL_DEVICE_NOT_FOUND: skip it.
        let Ok(ids) = p.get_devices(CL_DEVICE_TYPE_ALL) else {
            continue;
        };
        for id in ids {
            let d = ClDevice::new(id);
            let t = d.dev_type().unwrap_or(0);
            let kind = if t & CL_DEVICE_TYPE_GPU != 0 {
                "GPU"
            } else if t & CL_DEVICE_TYPE_CPU != 0 {
                "CPU"
            } else if t & CL_DEVICE_TYPE_ACCELERATOR != 0 {
                "ACCELERATOR"
            } else {
                "OTHER"
            };
            let info = DeviceInfo {
                index: out.len(),
                platform: pname.trim().to_string(),
                name: d.name().unwrap_or_else(|_| "?".into()).trim().to_string(),
                kind: kind.into(),
                compute_units: d.max_compute_units().unwrap_or(0),
                global_mem: d.global_mem_size().unwrap_or(0),
            };
            out.push(Found { info, id });
        }
    }
    Ok(out)
}

/// Picks device indices for a `GPU_DEVICE` value (see `Gpu::open`).
pub(crate) fn choose(found: &[Found], sel: &str) -> Result<Vec<usize>> {
    let sel = sel.trim();
    let gpus: Vec<usize> = found
        .iter()
        .filter(|f| f.info.kind == "GPU")
        .map(|f| f.info.index)
        .collect();
    let listing = || {
        let names: Vec<String> = found
            .iter()
            .map(|f| format!("{}: {} [{}]", f.info.index, f.info.name, f.info.kind))
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    match sel.to_ascii_lowercase().as_str() {
        "auto" | "" => {
            if gpus.is_empty() {
                return Err(Error::Gpu(format!(
                    "no OpenCL GPU device (devices: {}); choose another with --gpu-device or GPU_DEVICE, an index or a name",
                    listing()
                )));
            }
            Ok(gpus)
        }
        // "all": every GPU; on a machine without one, every device (so two PoCL devices can be driven).
        "all" => {
            if !gpus.is_empty() {
                Ok(gpus)
            } else if !found.is_empty() {
                Ok((0..found.len()).collect())
            } else {
                Err(Error::Gpu("no OpenCL device".into()))
            }
        }
        s if s
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ') =>
        {
            let mut v = Vec::new();
            for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let i: usize = part
                    .parse()
                    .map_err(|_| Error::Gpu(format!("bad GPU_DEVICE index {part:?}")))?;
                if i >= found.len() {
                    return Err(Error::Gpu(format!(
                        "no OpenCL device {i} (devices: {})",
                        listing()
                    )));
                }
                if !v.contains(&i) {
                    v.push(i);
                }
            }
            if v.is_empty() {
                return Err(Error::Gpu("empty GPU_DEVICE".into()));
            }
            Ok(v)
        }
        s => found
            .iter()
            .find(|f| {
                f.info.name.to_ascii_lowercase().contains(s)
                    || f.info.platform.to_ascii_lowercase().contains(s)
            })
            .map(|f| vec![f.info.index])
            .ok_or_else(|| {
                Error::Gpu(format!(
                    "no OpenCL device matches {sel:?} (devices: {})",
                    listing()
                ))
            }),
    }
}

/// Default log2 of the parse sub-block: 4 KiB (see docs/GPU.md for the ratio/speed trade).
const PSUB_LOG: u32 = 12;

/// Default of `Tuning::back_below`: lz_find asks the older segments' tables only while its best match
/// is shorter than 16 bytes (docs/GPU.md run 65).
const BACK_BELOW: u32 = 16;

/// Bytes of one slot of lz_find's local table: 16-bit positions (relative to the previous segment)
/// while two segments' positions fit in them, else 32-bit (the kernel's `SUB_LOG <= 15` switch).
fn slot_bytes(sub_log: u32) -> u64 {
    if sub_log <= 15 {
        2
    } else {
        4
    }
}

/// Kernel tuning, from Config, fixed when the programs are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// log2 of the segment size (one lz_find work-group each; the local table's reach).
    pub sub_log: u32,
    /// log2 of the parse sub-block size (one lz_parse work-item each; no match crosses its end).
    pub psub_log: u32,
    /// Work-group size of lz_find and lz_emit.
    pub wg: usize,
    /// Work-group size of lz_plan (one group per frame).
    pub pwg: usize,
    /// Work-group size of lz_decompress; also the sequences it decodes per window. Does not change
    /// any output (decoding is exact), so it may depend on the device.
    pub dwg: usize,
    /// log2 of the per-frame first-occurrence table (HASH_LOG).
    pub hash_log: u32,
    /// log2 of the per-sub-block local table, sized to fit local memory.
    pub lhash_log: u32,
    /// Top-K slots per local bucket (HASH_CANDIDATES).
    pub cands: u32,
    /// Match length at which the search stops (GOOD_ENOUGH_MATCH), also the stored cap.
    pub good: u32,
    /// Shortest match emitted: 5, the first length that pays for a 3-byte offset.
    pub min_match: u32,
    /// Anchors (far-match sample points): about one position in 2^abits.
    pub abits: u32,
    /// Older segments (before the previous one) whose last-occurrence tables lz_find also asks, per
    /// position: 8 (`CLC_GPU_BACK`, 0..=8, for experiments). Run 50: the mixed tree's all-GPU archive
    /// 1.091 -> 1.022 x `--cpu`'s, and the all-GPU pack 0.76-0.80 x the time of B = 0 (docs/GPU.md).
    pub back: u32,
    /// The older segments are asked only while the best match so far is shorter than this: 16
    /// (`CLC_GPU_BACK_BELOW`, 5..=255, for experiments; GOOD asks them always). Run 65: 16 took 34 % /
    /// 14 % off lz_find on the Rust-doc / mixed tar for +0.19 % / +0.06 % of bytes (0.9247 / 1.0217 x
    /// the CPU encoder's).
    pub back_below: u32,
    /// Most anchors kept per segment.
    pub acap: usize,
    /// Work-group size of lz_anchor.
    pub awg: usize,
    /// log2 of the LZ_EXT3_SB sub-block size the encoder writes (SUBBLOCK_SIZE), 0: plain LZ_EXT3
    /// (codec 1). A kernel argument, not a build constant.
    pub sb_log: u32,
}

impl Tuning {
    /// The tuning for `cfg`. It depends on the config alone, never on the device, so that the encoded
    /// bytes are the same on every device (the epoch size WG and the table sizes shape the parse).
    pub fn new(cfg: &Config) -> Tuning {
        let env = crate::diag::knob;
        // CLC_GPU_* overrides are for experiments (docs/GPU.md); the defaults are the format's tuning.
        let sub_log = env("CLC_GPU_SUB_LOG", 12..=20, 15);
        let sb_log = match cfg.frame_codec() {
            Codec::LzExt3Sb => cfg.encode_params().sb_log.clamp(MIN_SB_LOG, MAX_SB_LOG),
            _ => 0,
        };
        // A parse sub-block never spans two LZ_EXT3_SB sub-blocks.
        let psub_log = env("CLC_GPU_PSUB_LOG", 8..=sub_log, PSUB_LOG.min(sub_log))
            .min(if sb_log > 0 { sb_log } else { u32::MAX });
        let dwg = env("CLC_GPU_DWG", 32..=1024, 128).next_power_of_two() as usize;
        let abits = env("CLC_GPU_ABITS", 2..=8, 4);
        let cands = cfg.hash_candidates.clamp(1, 8);
        let hash_log = cfg.hash_log.clamp(10, 22);
        // Local table: sized as 4 bytes per slot in at most 32 KiB (every OpenCL GPU has at least
        // that), at most 4096 buckets. CLC_GPU_LHASH_LOG (experiments) asks for more buckets, up to
        // 32 KiB of the slots' real size (13 with the 16-bit slots of 32 KiB segments).
        let (cap, unit) = match std::env::var_os("CLC_GPU_LHASH_LOG") {
            Some(_) => (env("CLC_GPU_LHASH_LOG", 8..=14, 12), slot_bytes(sub_log)),
            None => (12, 4),
        };
        let mut lhash_log = hash_log.min(cap);
        while lhash_log > 8 && (unit << lhash_log) * cands as u64 > 32 << 10 {
            lhash_log -= 1;
        }
        let good = cfg.good_enough_match.clamp(5, 255);
        Tuning {
            sub_log,
            psub_log,
            wg: 64,
            pwg: 256,
            dwg,
            hash_log,
            lhash_log,
            cands,
            good,
            min_match: 5,
            abits,
            back: env("CLC_GPU_BACK", 0..=8, 8),
            back_below: env("CLC_GPU_BACK_BELOW", 5..=255, BACK_BELOW.min(good)),
            acap: (2usize << (sub_log - abits)).clamp(256, 4096),
            awg: 256,
            sb_log,
        }
    }

    /// Bytes of local memory the largest kernel needs (lz_find's table, or lz_anchor's list).
    pub fn local_bytes(&self) -> u64 {
        let find = (slot_bytes(self.sub_log) << self.lhash_log) * self.cands as u64
            + 8 * self.wg as u64
            + 16;
        let anchor = 8 * self.acap as u64 + 4 * self.awg as u64;
        let build = 4u64 << self.lhash_log; // lz_build_l's table
        find.max(anchor).max(build)
    }

    fn options(&self) -> String {
        format!(
            "-D SUB_LOG={} -D PSUB_LOG={} -D WG={} -D PWG={} -D DWG={} -D HASH_LOG={} -D LHASH_LOG={} \
             -D CANDS={} -D GOOD={} -D MIN_MATCH={} -D ABITS={} -D ACAP={} -D AWG={} -D BACK={} \
             -D BACK_BELOW={}",
            self.sub_log,
            self.psub_log,
            self.wg,
            self.pwg,
            self.dwg,
            self.hash_log,
            self.lhash_log,
            self.cands,
            self.good,
            self.min_match,
            self.abits,
            self.acap,
            self.awg,
            self.back,
            self.back_below
        )
    }

    pub fn sub(&self) -> usize {
        1 << self.sub_log
    }

    /// Bytes of scratch per parse sub-block (the SCRATCH macro of the kernel).
    pub fn scratch(&self) -> usize {
        let p = 1usize << self.psub_log;
        p + p / 255 + 64
    }
}

/// The kernels of one device. `Kernel` is not `Sync`, so they sit behind the device's mutex, which
/// also serialises batches on that device.
pub(crate) struct Kernels {
    /// lz_build4 and the input bytes per work-item (4; 1 for an older kernel's lz_build), launched
    /// after a clear of the tables when `build_l` is None.
    pub build: (Kernel, usize),
    /// lz_build_l: the same tables built in local memory, one work-group of
    /// [`super::compress::BUILD_WG`] per segment, written out whole (no clear, no global atomics).
    /// None with `CLC_GPU_BUILD=4` (lz_build4; the same bytes) or a `CLC_GPU_C_SRC` file without it.
    pub build_l: Option<Kernel>,
    pub anchor: Kernel,
    pub merge: Kernel,
    pub link: Kernel,
    pub find: Kernel,
    /// lz_parse_w with `true` (a warp per parse sub-block, two per work-group of 64; the default since
    /// run 66: the parse 9.1 -> 5.4 ms on the Rust-doc tar, 8.8 -> 3.7 on the mixed tar), or lz_parse
    /// (one work-item per parse sub-block; `CLC_GPU_PARSE_LANES=1`). Both write the same bytes.
    pub parse: (Kernel, bool),
    pub plan: Kernel,
    pub emit: Kernel,
    pub decompress: Kernel,
    /// The LZ_EXT3_SB decoder's walk (one work-group of `sb_w` per sub-block) and its pointer-jumping
    /// pass (work-groups of `sb_jw`, `sb_jper` bytes per work-item).
    pub decompress_sb: Kernel,
    pub jump_sb: Kernel,
    /// Its buffers, kept between launches.
    pub sb: Option<super::decompress_sb::Buffers>,
    pub fnv: Kernel,
    /// The encoder's device buffers, one set per queue, kept between launches.
    pub cbufs: [Option<super::compress::Buffers>; 2],
    pub queue: Queue,
    /// A second queue, so that two compression launches overlap (transfers of one, kernels of the
    /// other). None on CPU-type devices: there nothing overlaps, and PoCL 4-5 aborts
    /// (`pocl_release_dlhandle_cache: Assertion 'found->ref_count > 0'`) when two launches of one
    /// kernel with different grid sizes run at once (its release finds the wrong cache entry).
    pub queue2: Option<Queue>,
}

impl Kernels {
    /// The two queues launches alternate on (the same one twice on CPU devices).
    pub fn queues(&self) -> [&Queue; 2] {
        [&self.queue, self.queue2.as_ref().unwrap_or(&self.queue)]
    }
}

/// One opened device.
pub(crate) struct Device {
    pub info: DeviceInfo,
    pub ctx: Context,
    pub tuning: Tuning,
    /// Largest single buffer the device allows.
    pub max_alloc: u64,
    /// Work-group size of the LZ_EXT3_SB decoder's walk: 128 (four warps) on GPUs, 1 on CPU devices,
    /// where work-items of a group run one after the other anyway.
    pub sb_w: usize,
    /// Work-group size of its pointer-jumping passes and bytes per work-item (a tile is
    /// `sb_jw * sb_jper` output bytes).
    pub sb_jw: usize,
    pub sb_jper: usize,
    pub k: Mutex<Kernels>,
}

impl Device {
    pub fn open(found: &Found, cfg: &Config) -> Result<Device> {
        let d = ClDevice::new(found.id);
        let name = &found.info.name;
        let ctx = Context::from_device(&d).cl(&format!("creating a context on {name}"))?;
        let local_mem = d.local_mem_size().unwrap_or(0);
        let max_wg = d.max_work_group_size().unwrap_or(0);
        let max_alloc = d.max_mem_alloc_size().unwrap_or(128 << 20);
        let tuning = Tuning::new(cfg);
        let need_wg = (tuning.wg.max(tuning.pwg).max(tuning.dwg).max(tuning.awg))
            .max(super::compress::BUILD_WG);
        if local_mem < tuning.local_bytes() + 64 || max_wg < need_wg {
            return Err(Error::Gpu(format!(
                "{name}: needs {} bytes of local memory and work-groups of {need_wg} (has {local_mem}, {max_wg})",
                tuning.local_bytes() + 64,
            )));
        }
        let opts = tuning.options();
        let t0 = std::time::Instant::now();
        let build = |src: &str, file: &str| -> Result<Program> {
            let (p, origin) = super::program::build(&ctx, &d, src, &opts, file)?;
            diag::trace::note(&format!("gpu: {file} for {name}: {origin:?}"));
            Ok(p)
        };
        // CLC_GPU_C_SRC names a file whose OpenCL C replaces the encoder's kernels (same kernels and
        // arguments), so variants can be timed beside each other without a rebuild (experiments).
        let alt_c = match std::env::var_os("CLC_GPU_C_SRC") {
            Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                Error::Gpu(format!("CLC_GPU_C_SRC {}: {e}", path.to_string_lossy()))
            })?),
            None => None,
        };
        let pc = build(
            alt_c.as_deref().unwrap_or(SRC_COMPRESS),
            "lz_ext3_compress.cl",
        )?;
        let pd = build(SRC_DECOMPRESS, "lz_ext3_decompress.cl")?;
        let pf = build(SRC_FNV, "fnv1a.cl")?;
        diag::trace::span("gpu: programs built", t0, 0);
        let cpu = found.info.kind == "CPU";
        // The walk's work-groups: four warps on GPUs (one parses, three place: docs/GPU.md runs 35-36),
        // one work-item on CPU devices. CLC_GPU_SB_WG=128 runs the GPUs' groups on a CPU device too
        // (tests); 32 is one warp (one work-item parses, the others place), any other multiple of 32 up
        // to 256 another count of placing warps (experiments).
        let sb_default = if cpu { 1 } else { 128 };
        let sb_w = match diag::knob("CLC_GPU_SB_WG", 1..=256, sb_default) {
            w if w == 1 || w % 32 == 0 => w as usize,
            _ => sb_default as usize,
        };
        // CLC_GPU_SB_JWG: work-group size of the passes (experiments).
        let sb_jw = diag::knob("CLC_GPU_SB_JWG", 1..=1024, if cpu { 64 } else { 256 }) as usize;
        // CLC_GPU_SB_JPER: bytes per work-item of the passes (experiments).
        let sb_jper = diag::knob("CLC_GPU_SB_JPER", 1..=32, 8) as usize;
        let psb = build_sb(
            &ctx,
            found,
            &format!("{opts} -D W={sb_w}u -D JPER={sb_jper}u"),
        )?;
        let kernel =
            |p: &Program, n: &str| Kernel::create(p, n).cl(&format!("creating kernel {n}"));
        let k = Kernels {
            // lz_build4 (4 positions per work-item); a CLC_GPU_C_SRC file written for older kernels
            // may have only lz_build (one position per work-item), which is then launched instead.
            build: match Kernel::create(&pc, "lz_build4") {
                Ok(k) => (k, 4),
                Err(_) => (kernel(&pc, "lz_build")?, 1),
            },
            build_l: match diag::knob("CLC_GPU_BUILD", 0..=4, 0) {
                4 => None,
                _ => Kernel::create(&pc, "lz_build_l").ok(),
            },
            anchor: kernel(&pc, "lz_anchor")?,
            merge: kernel(&pc, "lz_merge")?,
            link: kernel(&pc, "lz_link")?,
            find: kernel(&pc, "lz_find")?,
            // A CLC_GPU_C_SRC file without lz_parse_w runs lz_parse.
            parse: match diag::knob("CLC_GPU_PARSE_LANES", 1..=32, 32) {
                1 => (kernel(&pc, "lz_parse")?, false),
                _ => match Kernel::create(&pc, "lz_parse_w") {
                    Ok(k) => (k, true),
                    Err(_) => (kernel(&pc, "lz_parse")?, false),
                },
            },
            plan: kernel(&pc, "lz_plan")?,
            emit: kernel(&pc, "lz_emit")?,
            decompress: kernel(&pd, "lz_decompress")?,
            decompress_sb: kernel(&psb, "lz3sb_walk")?,
            jump_sb: kernel(&psb, "lz3sb_jump")?,
            sb: None,
            cbufs: [None, None],
            fnv: kernel(&pf, "fnv1a64")?,
            queue: Queue::new(&ctx, found.id)?,
            // CLC_GPU_QUEUES=1: one queue on GPUs too, so that each compression stage's event span
            // holds its own kernels alone (experiments: docs/GPU.md's per-kernel times).
            queue2: if cpu || diag::knob("CLC_GPU_QUEUES", 1..=2, 2) == 1 {
                None
            } else {
                Some(Queue::new(&ctx, found.id)?)
            },
        };
        Ok(Device {
            info: found.info.clone(),
            ctx,
            tuning,
            max_alloc,
            sb_w,
            sb_jw,
            sb_jper,
            k: Mutex::new(k),
        })
    }
}

/// Builds the LZ_EXT3_SB decoder (a walk and pointer-jumping passes: no device-wide fences or special
/// loads, the same OpenCL C everywhere). Experiments: `CLC_GPU_SB_COLLAPSE` sets the hops the walk follows
/// through entries of its own sub-block's earlier windows (default 8, 0: none), `CLC_GPU_SB_JUMPS` the hops a
/// pending byte follows in one pass (default 16: with the passes in sub-block rows, 112.0 GB/s against
/// 110.8 with 8 on the H200, docs/GPU.md run 47; before them, run 25: 60 with 8, 48 with 4, 31 with 1),
/// and `CLC_GPU_SB_SRC` names a file whose OpenCL C
/// replaces the built-in kernels (same arguments), so variants can be timed without a rebuild.
fn build_sb(ctx: &Context, found: &Found, opts: &str) -> Result<Program> {
    let d = ClDevice::new(found.id);
    let collapse = diag::knob("CLC_GPU_SB_COLLAPSE", 0..=64, 8);
    let jumps = diag::knob("CLC_GPU_SB_JUMPS", 1..=64, 16);
    let opts = format!("{opts} -D COLLAPSE={collapse}u -D JUMPS={jumps}u");
    let file = "lz_ext3_sb_decompress.cl";
    let alt = std::env::var_os("CLC_GPU_SB_SRC").map(std::path::PathBuf::from);
    let src = match &alt {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::Gpu(format!("CLC_GPU_SB_SRC {}: {e}", path.display())))?,
        None => SRC_DECOMPRESS_SB.to_string(),
    };
    let (p, origin) = super::program::build(ctx, &d, &src, &opts, file)?;
    diag::trace::note(&format!("gpu: {file} for {}: {origin:?}", found.info.name));
    Ok(p)
}
