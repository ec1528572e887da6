//! Writing a parity set after the data volumes of a pack or an append are complete: the volumes are
//! re-read stripe by stripe, each stripe is Reed–Solomon encoded into P parity slices, and the headers
//! (with every slice's checksum) are written last, over a placeholder that only says "clc parity", so a
//! parity volume never looks valid before it is complete. Parity volumes are written under temporary names
//! (`NAME.pNNN.partial`) and renamed when all are done; none is larger than `VOLUME_SIZE` (FORMAT.md 9.1).
//! In object storage, where an object cannot be written out of order, the checksums come from a first
//! pass and each parity volume is streamed once, header first ([`write_set_streamed`]).

use super::layout::{ParityHeader, MAGIC, VERSION};
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

/// Where a set goes: its data volumes (in order, the first being volume `first_data`), the number of its
/// first parity volume, and the largest volume allowed.
pub struct SetPlace<'a> {
    pub volumes: &'a [PathBuf],
    pub first_data: u32,
    pub first_parity: u32,
    pub volume_size: u64,
}

/// Writes a parity set (`NAME.p<first_parity>` …) over `place.volumes` of archive `archive_id`, with
/// `percent` % parity (P = ceil(percent × N / 100), at least 1). A failure removes what it wrote.
pub fn create(
    base: &Path,
    place: &SetPlace,
    percent: u32,
    archive_id: [u8; 16],
) -> Result<Created> {
    let t0 = std::time::Instant::now();
    let mut h = plan(place, percent, archive_id)?;
    let numbers: Vec<u32> = (h.first_parity..h.first_parity + h.file_count()).collect();
    let paths: Vec<PathBuf> = numbers.iter().map(|&j| parity_path(base, j)).collect();
    if volumes::remote::is_remote(base) {
        if let Err(e) = write_set_streamed(&mut h, place.volumes, &paths) {
            for p in &paths {
                let _ = volumes::remove(p);
            }
            return Err(e);
        }
        return Ok(Created {
            bytes: h.parity_bytes(),
            paths,
            stripe_size: h.stripe_size,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    let tmps: Vec<PathBuf> = paths.iter().map(|p| volumes::partial_path(p)).collect();
    let r = write_set(&mut h, place.volumes, &tmps).and_then(|()| {
        for (t, p) in tmps.iter().zip(&paths) {
            if p.symlink_metadata().is_ok() {
                return Err(Error::Usage(format!(
                    "{}: exists already; not overwritten",
                    p.display()
                )));
            }
            std::fs::rename(t, p).ctx(p)?;
        }
        volumes::sync_dir(base).ctx(volumes::dir_of(base))
    });
    if let Err(e) = r {
        for p in tmps.iter().chain(&paths) {
            let _ = std::fs::remove_file(p);
        }
        return Err(e);
    }
    Ok(Created {
        bytes: h.parity_bytes(),
        paths,
        stripe_size: h.stripe_size,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The header of the set to write, with the lengths filled in and the checksums still zero: stripes of
/// at most 1 MiB, smaller when needed so that every parity volume fits `VOLUME_SIZE`.
fn plan(place: &SetPlace, percent: u32, archive_id: [u8; 16]) -> Result<ParityHeader> {
    let volumes = place.volumes;
    let data_lens = volumes
        .iter()
        .map(|p| volumes::size(p).ctx(p))
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
    let mut h = ParityHeader {
        version: VERSION,
        index: place.first_parity,
        parity_count: p,
        data_count: n,
        archive_id,
        stripe_size: 0,
        stripe_count: 0,
        data_len,
        first_data: place.first_data,
        first_parity: place.first_parity,
        stripes_per_file: 0,
        data_lens,
        data_sums: Vec::new(),
        parity_sums: Vec::new(),
    };
    let (b, per) = geometry(&h, place.volume_size)?;
    let s = data_len.div_ceil(u64::from(b)) as u32;
    h.stripe_size = b;
    h.stripe_count = s;
    h.stripes_per_file = per;
    h.data_sums = vec![0; n as usize * s as usize];
    h.parity_sums = vec![0; p as usize * s as usize];
    Ok(h)
}

/// Stripe size B and stripes per parity volume K for `h`'s counts: the largest B (from the usual
/// choice down, halving) for which a parity volume of one stripe fits `max` bytes, and as many stripes
/// per volume as fit.
fn geometry(h: &ParityHeader, max: u64) -> Result<(u32, u32)> {
    let (n, p) = (h.data_count, h.parity_count);
    let mut b = stripe_size(n, p, h.data_len);
    let mut best = u64::MAX;
    loop {
        let s = h.data_len.div_ceil(u64::from(b)) as u32;
        let trial = ParityHeader {
            stripe_size: b,
            stripe_count: s,
            ..h.clone()
        };
        let hl = trial.header_len();
        best = best.min(hl + u64::from(b));
        if hl + u64::from(b) <= max {
            let per = ((max - hl) / u64::from(b)).clamp(1, u64::from(s)) as u32;
            return Ok((b, per));
        }
        if b <= 64 {
            return Err(Error::Usage(format!(
                "parity over {n} data volumes does not fit volumes of {max} bytes (a parity volume \
                 needs at least {best}); use a larger --volume-size or less --parity"
            )));
        }
        b = (b / 2).max(64) / 64 * 64;
    }
}

/// Writes the parity volumes into `tmps` (in number order): the stripes of each range of K stripes
/// into its P volumes (so that only P are open at a time), then every header.
fn write_set(h: &mut ParityHeader, volumes: &[PathBuf], tmps: &[PathBuf]) -> Result<()> {
    let p = h.parity_count as usize;
    let r = h.files_per_shard() as usize;
    let mut coder = Coder::new(h, volumes)?;
    let placeholder = {
        let mut v = vec![0u8; h.header_len() as usize];
        v[..6].copy_from_slice(&MAGIC[..6]);
        v
    };
    for range in 0..r {
        let mut outs = (0..p)
            .map(|j| {
                let t = &tmps[j * r + range];
                let f = volumes::create(t).ctx(t)?;
                let mut w = BufWriter::with_capacity(1 << 20, f);
                w.write_all(&placeholder).ctx(t)?;
                Ok(w)
            })
            .collect::<Result<Vec<_>>>()?;
        coder.range(h, range as u32, Sums::Record, &mut |j, rec| {
            let t = &tmps[j * r + range];
            outs[j].write_all(rec).ctx(t)
        })?;
        for (j, w) in outs.iter_mut().enumerate() {
            w.flush().ctx(&tmps[j * r + range])?;
        }
    }
    for (k, t) in tmps.iter().enumerate() {
        h.index = h.first_parity + k as u32;
        let mut f = std::fs::OpenOptions::new().write(true).open(t).ctx(t)?;
        f.seek(SeekFrom::Start(0)).ctx(t)?;
        f.write_all(&h.encode()).ctx(t)?;
        f.sync_data().ctx(t)?;
    }
    h.index = h.first_parity;
    Ok(())
}

/// The parity set of an archive in object storage, where an object is written front to back once: a
/// first pass encodes every stripe to learn the checksums the headers hold (writing nothing), a
/// second encodes them again and streams each parity volume, header first, under its final name,
/// checking that every slice hashes as in the first pass (a data volume changed in between is an
/// error). The data volumes are read twice; each parity volume appears only when its upload completes.
fn write_set_streamed(h: &mut ParityHeader, volumes: &[PathBuf], paths: &[PathBuf]) -> Result<()> {
    let p = h.parity_count as usize;
    let r = h.files_per_shard() as usize;
    let mut coder = Coder::new(h, volumes)?;
    for range in 0..r {
        coder.range(h, range as u32, Sums::Record, &mut |_, _| Ok(()))?;
    }
    for range in 0..r {
        let mut outs = (0..p)
            .map(|j| {
                let t = &paths[j * r + range];
                let mut ph = h.clone();
                ph.index = h.first_parity + (j * r + range) as u32;
                let mut w = BufWriter::with_capacity(1 << 20, volumes::create_out(t).ctx(t)?);
                w.write_all(&ph.encode()).ctx(t)?;
                Ok(w)
            })
            .collect::<Result<Vec<_>>>()?;
        coder.range(h, range as u32, Sums::Check, &mut |j, rec| {
            outs[j].write_all(rec).ctx(&paths[j * r + range])
        })?;
        for (j, w) in outs.into_iter().enumerate() {
            let t = &paths[j * r + range];
            let out = w.into_inner().map_err(|e| e.into_error()).ctx(t)?;
            out.finish().ctx(t)?;
        }
    }
    Ok(())
}

/// What [`Coder::range`] does with the slices' checksums: records them in the header, or checks them
/// against the header (the second pass of [`write_set_streamed`]).
#[derive(Clone, Copy, PartialEq)]
enum Sums {
    Record,
    Check,
}

/// Reads stripes of the data volumes and encodes them.
struct Coder<'a> {
    volumes: &'a [PathBuf],
    /// Volumes in object storage, opened once (a `HEAD` each); local files are opened per stripe, so
    /// that file descriptors stay bounded however many volumes there are.
    remote: Option<Vec<volumes::Vol>>,
    bufs: Vec<Vec<u8>>,
    enc: Option<ReedSolomonEncoder>,
}

impl<'a> Coder<'a> {
    fn new(h: &ParityHeader, volumes: &'a [PathBuf]) -> Result<Coder<'a>> {
        let remote = match volumes.first() {
            Some(v) if volumes::remote::is_remote(v) => Some(
                volumes
                    .iter()
                    .map(|v| volumes::open_vol(v).ctx(v))
                    .collect::<Result<Vec<_>>>()?,
            ),
            _ => None,
        };
        Ok(Coder {
            volumes,
            remote,
            bufs: vec![vec![0u8; h.stripe_size as usize]; h.data_count as usize],
            enc: None,
        })
    }

    /// Encodes the stripes of parity range `range` (those of its K stripes that exist), handing each
    /// parity slice to `emit(j, slice)` for parity shard j. The data slices of a stripe are read in
    /// parallel (ranged `GET`s in a bucket).
    fn range(
        &mut self,
        h: &mut ParityHeader,
        range: u32,
        sums: Sums,
        emit: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        use rayon::prelude::*;
        let (n, p, s_count) = (
            h.data_count as usize,
            h.parity_count as usize,
            h.stripe_count as usize,
        );
        let per = h.stripes_per_file;
        let first = range * per;
        for s in first..(first + per).min(h.stripe_count) {
            let sl = h.shard_len(s);
            let start = h.stripe_start(s);
            let (vols, remote) = (self.volumes, self.remote.as_deref());
            let read: Vec<u64> = self
                .bufs
                .par_iter_mut()
                .enumerate()
                .map(|(i, buf)| {
                    let (buf, vol) = (&mut buf[..sl], &vols[i]);
                    match remote {
                        Some(r) => read_padded(&r[i], start, buf).ctx(vol)?,
                        None => {
                            let f = volumes::open_vol(vol).ctx(vol)?;
                            read_padded(&f, start, buf).ctx(vol)?
                        }
                    };
                    Ok(checksum(buf))
                })
                .collect::<Result<Vec<u64>>>()?;
            for (i, sum) in read.into_iter().enumerate() {
                record(
                    &mut h.data_sums[i * s_count + s as usize],
                    sum,
                    sums,
                    &vols[i],
                )?;
            }
            let enc = rs_encoder(&mut self.enc, n, p, sl)?;
            for buf in &self.bufs {
                enc.add_original_shard(&buf[..sl]).map_err(rs_err)?;
            }
            let out = enc.encode().map_err(rs_err)?;
            for (j, rec) in out.recovery_iter().enumerate() {
                let at = j * s_count + s as usize;
                record(&mut h.parity_sums[at], checksum(rec), sums, &vols[0])?;
                emit(j, rec)?;
            }
            if let Some(sig) = crate::sys::interrupted() {
                return Err(Error::Interrupted(sig));
            }
        }
        Ok(())
    }
}

/// Records `sum` in `slot`, or checks that it is what the first pass recorded.
fn record(slot: &mut u64, sum: u64, how: Sums, what: &Path) -> Result<()> {
    match how {
        Sums::Record => *slot = sum,
        Sums::Check if *slot != sum => {
            return Err(Error::Parity {
                what: crate::diag::escape_path(what),
                msg: "the data volumes changed while their parity was written".into(),
            })
        }
        Sums::Check => {}
    }
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
