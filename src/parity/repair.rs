//! `clc repair`: rebuilds, stripe by stripe, every data and parity volume that the parity allows, into
//! `NAME.NNN.repaired.tmp`; only when all are written and synced, a damaged file is renamed aside to
//! `NAME.NNN.damaged` and the rebuilt one takes its place. A volume that is intact is never rewritten, and
//! one that cannot be rebuilt whole is left as it is. In object storage a rebuilt volume is streamed
//! under its own name and replaces the damaged object when its upload completes, after every stripe of
//! every target was rebuilt and checked (no copy is kept aside: a bucket has no rename).

use super::create::{rs_encoder, rs_err};
use super::health::{check_with, Health, VolHealth};
use super::{read_padded, real_bytes};
use crate::diag::{escape_path, Progress};
use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::ids::VolumeNo;
use crate::volumes::{self, base_of, data_path, parity_path, VolOut};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What [`repair`] did.
#[derive(Debug, Clone)]
pub struct Repaired {
    /// The state found before repairing, one per parity set.
    pub before: Vec<Health>,
    /// Volumes written anew (data first, then parity, set by set).
    pub rebuilt: Vec<PathBuf>,
    /// Damaged files renamed aside: (old name, new name).
    pub moved: Vec<(PathBuf, PathBuf)>,
    /// Volumes that need repair but have more damage than the parity covers.
    pub lost: Vec<PathBuf>,
    pub seconds: f64,
}

/// Repairs the archive `path` names, parity set by parity set. `Ok(None)`: it has no parity volumes.
pub fn repair(path: &Path) -> Result<Option<Repaired>> {
    repair_with(path, false)
}

/// [`repair`], showing the check and the rebuild on stderr when `show` (see [`Progress`]).
pub fn repair_with(path: &Path, show: bool) -> Result<Option<Repaired>> {
    let t0 = std::time::Instant::now();
    let sets = check_with(path, show)?;
    if sets.is_empty() {
        return Ok(None);
    }
    let base = base_of(path);
    let remote = volumes::remote::is_remote(&base);
    let mut lost: Vec<PathBuf> = Vec::new();
    let mut finals: Vec<PathBuf> = Vec::new();
    let mut tmps: Vec<PathBuf> = Vec::new();
    for h in &sets {
        let pick = |vs: &[VolHealth], ok: bool| -> Vec<usize> {
            (0..vs.len())
                .filter(|&i| vs[i].needs_rewrite() && h.rebuildable(&vs[i]) == ok)
                .collect()
        };
        let (td, tp) = (pick(&h.data, true), pick(&h.parity, true));
        lost.extend(
            pick(&h.data, false)
                .into_iter()
                .map(|i| h.data[i].path.clone()),
        );
        lost.extend(
            pick(&h.parity, false)
                .into_iter()
                .map(|k| h.parity[k].path.clone()),
        );
        let hd = &h.header;
        let set_finals: Vec<PathBuf> = td
            .iter()
            .map(|&i| data_path(&base, VolumeNo(hd.first_data + i as u32)))
            .chain(
                tp.iter()
                    .map(|&k| parity_path(&base, hd.first_parity + k as u32)),
            )
            .collect();
        // In a bucket a rebuilt volume streams under its final name and replaces the damaged object
        // only when its upload completes (there is no rename, nor a copy kept aside).
        let set_tmps: Vec<PathBuf> = if remote {
            set_finals.clone()
        } else {
            set_finals
                .iter()
                .map(|p| suffixed(p, ".repaired.tmp"))
                .collect()
        };
        let progress = Progress::new(
            show && !set_tmps.is_empty(),
            "repair",
            (0..hd.stripe_count)
                .map(|s| hd.shard_len(s) as u64)
                .sum::<u64>()
                * set_tmps.len() as u64,
            u64::from(hd.stripe_count),
            "stripes",
        );
        let r = rebuild(&base, h, &td, &tp, &set_tmps, &progress);
        progress.finish();
        finals.extend(set_finals);
        tmps.extend(set_tmps);
        if let Err(e) = r {
            if !remote {
                for t in &tmps {
                    let _ = std::fs::remove_file(t);
                }
            }
            return Err(e);
        }
    }
    let mut moved = Vec::new();
    for (tmp, fin) in tmps.iter().zip(&finals).filter(|_| !remote) {
        if fin.symlink_metadata().is_ok() {
            let aside = aside_name(fin);
            std::fs::rename(fin, &aside).ctx(fin)?;
            moved.push((fin.clone(), aside));
        }
        std::fs::rename(tmp, fin).ctx(tmp)?;
    }
    if !finals.is_empty() {
        let _ = volumes::sync_dir(&base);
    }
    Ok(Some(Repaired {
        before: sets,
        rebuilt: finals,
        moved,
        lost,
        seconds: t0.elapsed().as_secs_f64(),
    }))
}

/// Writes the rebuilt data volumes `td` and parity volumes `tp` (positions in the set's lists) into
/// `tmps` (data first).
fn rebuild(
    base: &Path,
    h: &Health,
    td: &[usize],
    tp: &[usize],
    tmps: &[PathBuf],
    progress: &Progress,
) -> Result<()> {
    let hd = &h.header;
    let (n, p) = (hd.data_count as usize, hd.parity_count as usize);
    let mut outs = Vec::with_capacity(tmps.len());
    for (k, t) in tmps.iter().enumerate() {
        let f = if volumes::remote::is_remote(t) {
            VolOut::Remote(volumes::remote::RemoteOut::replace(t).ctx(t)?)
        } else {
            let _ = std::fs::remove_file(t);
            VolOut::Local(volumes::create(t).ctx(t)?)
        };
        let mut w = BufWriter::with_capacity(1 << 20, f);
        if let Some(&pk) = tp.get(k.wrapping_sub(td.len())) {
            let mut ph = hd.clone();
            ph.index = hd.first_parity + pk as u32;
            w.write_all(&ph.encode()).ctx(t)?;
        }
        outs.push(w);
    }
    let data_paths: Vec<PathBuf> = (0..n as u32)
        .map(|i| data_path(base, VolumeNo(hd.first_data + i)))
        .collect();
    let par_path = |j: usize, s: u32| parity_path(base, hd.file_of(j as u32, s));
    let mut bufs = vec![Vec::new(); n];
    let mut pbufs = vec![Vec::new(); p];
    let (mut dec, mut enc) = (None, None);
    for s in 0..hd.stripe_count {
        let sl = hd.shard_len(s);
        progress.bytes(sl as u64 * tmps.len() as u64);
        progress.items(1);
        let erased = h.erased(s);
        // The parity targets holding stripe s, and their shards.
        let here: Vec<(usize, usize)> = tp
            .iter()
            .enumerate()
            .filter_map(|(x, &pk)| {
                let (j, stripes) = hd.slot_of(hd.first_parity + pk as u32);
                stripes.contains(&s).then_some((x, j as usize))
            })
            .collect();
        let par_needed = here
            .iter()
            .any(|&(x, _)| h.parity[tp[x]].bad.binary_search(&s).is_ok());
        let decode = !erased.is_empty() && h.recoverable(s);
        // Every data slice when something is computed; otherwise only the targets' own.
        let want: Vec<usize> = if decode || par_needed {
            (0..n).filter(|i| !erased.contains(i)).collect()
        } else {
            td.to_vec()
        };
        for &i in &want {
            read_data(hd, s, i, &data_paths[i], &mut bufs[i])?;
        }
        if decode {
            let good = h.good_parity(s);
            for &j in good.iter().take(erased.len()) {
                read_parity(hd, s, &par_path(j, s), &mut pbufs[j])?;
            }
            let d = rs_decoder(&mut dec, n, p, sl)?;
            for i in (0..n).filter(|i| !erased.contains(i)) {
                d.add_original_shard(i, &bufs[i]).map_err(rs_err)?;
            }
            for &j in good.iter().take(erased.len()) {
                d.add_recovery_shard(j, &pbufs[j]).map_err(rs_err)?;
            }
            let out = d.decode().map_err(rs_err)?;
            for &i in &erased {
                let r = out.restored_original(i).ok_or_else(|| Error::Parity {
                    what: "Reed–Solomon".into(),
                    msg: format!(
                        "stripe {s} of volume {} not restored",
                        hd.first_data + i as u32
                    ),
                })?;
                bufs[i].clear();
                bufs[i].extend_from_slice(r);
                if checksum(&bufs[i]) != hd.data_sum(i, s) {
                    return Err(Error::Parity {
                        what: escape_path(&data_paths[i]),
                        msg: format!("rebuilt stripe {s} fails its checksum; nothing was changed"),
                    });
                }
            }
        }
        if par_needed {
            let e = rs_encoder(&mut enc, n, p, sl)?;
            encode_into(e, &bufs, &mut pbufs)?;
        }
        for &(x, j) in &here {
            let pk = tp[x];
            if h.parity[pk].bad.binary_search(&s).is_err() {
                read_parity(hd, s, &par_path(j, s), &mut pbufs[j])?;
            } else if checksum(&pbufs[j]) != hd.parity_sum(j, s) {
                return Err(Error::Parity {
                    what: escape_path(&par_path(j, s)),
                    msg: format!("rebuilt stripe {s} fails its checksum; nothing was changed"),
                });
            }
            outs[td.len() + x]
                .write_all(&pbufs[j])
                .ctx(&tmps[td.len() + x])?;
        }
        for (k, &i) in td.iter().enumerate() {
            let real = real_bytes(hd, hd.data_lens[i], s);
            outs[k].write_all(&bufs[i][..real]).ctx(&tmps[k])?;
        }
    }
    // Only now, every stripe rebuilt and checked: the files are synced, the objects appear.
    for (w, t) in outs.into_iter().zip(tmps) {
        let out = w.into_inner().map_err(|e| e.into_error()).ctx(t)?;
        out.finish().ctx(t)?;
    }
    Ok(())
}

fn encode_into(e: &mut ReedSolomonEncoder, bufs: &[Vec<u8>], pbufs: &mut [Vec<u8>]) -> Result<()> {
    for b in bufs {
        e.add_original_shard(b).map_err(rs_err)?;
    }
    let out = e.encode().map_err(rs_err)?;
    for (pb, r) in pbufs.iter_mut().zip(out.recovery_iter()) {
        pb.clear();
        pb.extend_from_slice(r);
    }
    Ok(())
}

/// Stripe `s` of data volume `i` into `buf` (zero-padded to the stripe's shard length).
fn read_data(
    h: &super::layout::ParityHeader,
    s: u32,
    i: usize,
    path: &Path,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    buf.resize(h.shard_len(s), 0);
    let real = real_bytes(h, h.data_lens[i], s);
    if real > 0 {
        let f = volumes::open_vol(path).ctx(path)?;
        read_padded(&f, h.stripe_start(s), &mut buf[..real]).ctx(path)?;
    }
    Ok(())
}

fn read_parity(
    h: &super::layout::ParityHeader,
    s: u32,
    path: &Path,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    buf.resize(h.shard_len(s), 0);
    let f = volumes::open_vol(path).ctx(path)?;
    read_padded(&f, h.slice_offset(s), buf).ctx(path)?;
    Ok(())
}

fn rs_decoder(
    slot: &mut Option<ReedSolomonDecoder>,
    n: usize,
    p: usize,
    len: usize,
) -> Result<&mut ReedSolomonDecoder> {
    match slot {
        Some(d) => d.reset(n, p, len).map_err(rs_err)?,
        None => *slot = Some(ReedSolomonDecoder::new(n, p, len).map_err(rs_err)?),
    }
    Ok(slot.as_mut().expect("set above"))
}

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `NAME.NNN.damaged`, or `NAME.NNN.damaged.2`, … when that exists already.
fn aside_name(p: &Path) -> PathBuf {
    std::iter::once(suffixed(p, ".damaged"))
        .chain((2..).map(|k| suffixed(p, &format!(".damaged.{k}"))))
        .find(|c| c.symlink_metadata().is_err())
        .expect("an endless iterator")
}
