//! Writing a parity set after the data volumes are complete: the volumes are re-read stripe by stripe,
//! each stripe is Reed–Solomon encoded into P parity slices, and the headers (with every slice's checksum)
//! are written last, over a zeroed placeholder, so a parity volume never looks valid before it is complete.

use super::layout::ParityHeader;
use super::{parity_count, read_padded, stripe_size};
use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::volumes::{self, parity_path};
use reed_solomon_simd::ReedSolomonEncoder;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What [`create`] wrote.
#[derive(Debug, Default, Clone)]
pub struct Created {
    pub paths: Vec<PathBuf>,
    pub bytes: u64,
    pub stripe_size: u32,
    pub seconds: f64,
}

/// Writes `NAME.p001 …` for the data volumes `volumes` (in order) of archive `archive_id`, with
/// `percent` % parity (P = ceil(percent × N / 100), at least 1). A failure removes what it wrote.
pub fn create(
    base: &Path,
    volumes: &[PathBuf],
    percent: u32,
    archive_id: [u8; 16],
) -> Result<Created> {
    let t0 = std::time::Instant::now();
    let mut h = plan(volumes, percent, archive_id)?;
    let paths: Vec<PathBuf> = (1..=h.parity_count).map(|j| parity_path(base, j)).collect();
    let r = write_set(&mut h, volumes, &paths);
    if let Err(e) = r {
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    Ok(Created {
        bytes: h.parity_file_len() * u64::from(h.parity_count),
        paths,
        stripe_size: h.stripe_size,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The header of the set to write, with the lengths filled in and the checksums still zero.
fn plan(volumes: &[PathBuf], percent: u32, archive_id: [u8; 16]) -> Result<ParityHeader> {
    let data_lens = volumes
        .iter()
        .map(|p| std::fs::metadata(p).ctx(p).map(|m| m.len()))
        .collect::<Result<Vec<u64>>>()?;
    let n = volumes.len() as u32;
    let p = parity_count(percent, volumes.len())?;
    let data_len = data_lens.iter().copied().max().unwrap_or(0);
    if data_len == 0 {
        return Err(Error::Parity {
            what: "parity".into(),
            msg: "no data volumes to protect".into(),
        });
    }
    let b = stripe_size(n, p, data_len);
    let s = data_len.div_ceil(u64::from(b)) as u32;
    Ok(ParityHeader {
        index: 1,
        parity_count: p,
        data_count: n,
        archive_id,
        stripe_size: b,
        stripe_count: s,
        data_len,
        data_lens,
        data_sums: vec![0; n as usize * s as usize],
        parity_sums: vec![0; p as usize * s as usize],
    })
}

fn write_set(h: &mut ParityHeader, volumes: &[PathBuf], paths: &[PathBuf]) -> Result<()> {
    let mut outs = paths
        .iter()
        .map(|p| {
            let f = volumes::create(p).ctx(p)?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            w.write_all(&vec![0u8; h.header_len() as usize]).ctx(p)?;
            Ok(w)
        })
        .collect::<Result<Vec<_>>>()?;
    let (n, s_count) = (h.data_count as usize, h.stripe_count as usize);
    let mut bufs = vec![vec![0u8; h.stripe_size as usize]; n];
    let mut enc: Option<ReedSolomonEncoder> = None;
    for s in 0..h.stripe_count {
        let sl = h.shard_len(s);
        // Opened per stripe: file descriptors stay bounded however many volumes there are.
        for (i, (buf, vol)) in bufs.iter_mut().zip(volumes).enumerate() {
            let buf = &mut buf[..sl];
            let f = volumes::open(vol).ctx(vol)?;
            read_padded(&f, h.stripe_start(s), buf).ctx(vol)?;
            h.data_sums[i * s_count + s as usize] = checksum(buf);
        }
        let enc = rs_encoder(&mut enc, n, h.parity_count as usize, sl)?;
        for buf in &bufs {
            enc.add_original_shard(&buf[..sl]).map_err(rs_err)?;
        }
        let out = enc.encode().map_err(rs_err)?;
        for (j, (rec, w)) in out.recovery_iter().zip(outs.iter_mut()).enumerate() {
            h.parity_sums[j * s_count + s as usize] = checksum(rec);
            w.write_all(rec).ctx(&paths[j])?;
        }
    }
    for (j, w) in outs.iter_mut().enumerate() {
        h.index = j as u32 + 1;
        let p = &paths[j];
        w.flush().ctx(p)?;
        w.seek(SeekFrom::Start(0)).ctx(p)?;
        w.write_all(&h.encode()).ctx(p)?;
        w.flush().ctx(p)?;
        w.get_ref().sync_data().ctx(p)?;
    }
    h.index = 1;
    Ok(())
}

/// The encoder for N + P shards of `len` bytes, made once and reset when the shard length changes.
pub(crate) fn rs_encoder(
    slot: &mut Option<ReedSolomonEncoder>,
    n: usize,
    p: usize,
    len: usize,
) -> Result<&mut ReedSolomonEncoder> {
    match slot {
        Some(e) => e.reset(n, p, len).map_err(rs_err)?,
        None => *slot = Some(ReedSolomonEncoder::new(n, p, len).map_err(rs_err)?),
    }
    Ok(slot.as_mut().expect("set above"))
}

pub(crate) fn rs_err(e: reed_solomon_simd::Error) -> Error {
    Error::Parity {
        what: "Reed–Solomon".into(),
        msg: e.to_string(),
    }
}
