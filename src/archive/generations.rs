//! The generations of a clc archive (FORMAT.md sections 3.2 and 10): finding the newest complete
//! footer among the listed volumes, reading each generation's index blob (across volumes where it
//! spans them), checking that the generations hold together, and assembling one table set and the
//! snapshots' entry tables from them.

use crate::codec::Codec;
use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::format::footer::Footer;
use crate::format::generation::{self, chain_error, Bases, GenIndex, SnapshotRecord};
use crate::format::index::{put_entry, Entry, Index, MAGIC as V1_MAGIC};
use crate::format::tree::Trailer;
use crate::format::volume::VolumeHeader;
use crate::format::TREE_VERSION;
use crate::ids::VolumeNo;
use crate::volumes;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A listed data volume: number, path, length.
#[derive(Clone, Debug)]
pub struct Listed {
    pub number: u32,
    pub path: PathBuf,
    pub len: u64,
}

/// Every data volume of `base`, with its length (one listing; in a bucket the listing holds the sizes).
pub fn list(base: &Path) -> Vec<Listed> {
    list_checked(base).unwrap_or_default()
}

/// [`list`], with a listing that fails (a bucket's endpoint, credentials) as that error.
pub fn list_checked(base: &Path) -> std::io::Result<Vec<Listed>> {
    Ok(volumes::list_data_sized_checked(base)?
        .into_iter()
        .map(|(n, path, len)| Listed {
            number: n.0,
            len,
            path,
        })
        .collect())
}

/// The last [`Footer::SIZE`] bytes of a volume (fewer when it is shorter): one suffix-range `GET` in a
/// bucket.
fn tail(v: &Listed) -> Result<Vec<u8>> {
    if volumes::remote::is_remote(&v.path) {
        let (t, size) = volumes::remote::read_tail(&v.path, Footer::SIZE as u64).ctx(&v.path)?;
        if size != v.len {
            return Err(Error::Usage(format!(
                "{}: changed while it was opened ({} bytes listed, {size} now)",
                v.path.display(),
                v.len
            )));
        }
        return Ok(t);
    }
    let f = volumes::open_vol(&v.path).ctx(&v.path)?;
    let n = Footer::SIZE.min(v.len as usize);
    let mut t = vec![0u8; n];
    f.read_exact_at(&mut t, v.len - n as u64).ctx(&v.path)?;
    Ok(t)
}

/// The archive id in a volume's header, if it has a valid one.
pub fn header_id(p: &Path) -> Option<[u8; 16]> {
    let f = volumes::open_vol(p).ok()?;
    let mut b = [0u8; VolumeHeader::SIZE];
    f.read_exact_at(&mut b, 0).ok()?;
    VolumeHeader::decode(&b, "").ok().map(|h| h.archive_id)
}

/// A complete generation's footer and the volume it ends.
#[derive(Clone, Debug)]
pub struct Newest {
    /// Position in the listing of the footer's volume.
    pub at: usize,
    pub footer: Footer,
    /// Volumes numbered above it: no complete generation holds them (FORMAT.md 3.2).
    pub stray: Vec<PathBuf>,
}

/// Walks the listing from the highest number down to the newest complete footer. `Ok(None)`: no
/// volume ends with anything like a footer (not a clc archive, or its only last volume is lost).
pub fn newest(vols: &[Listed]) -> Result<Option<Newest>> {
    for at in (0..vols.len()).rev() {
        let v = &vols[at];
        let t = tail(v)?;
        if !Footer::looks_like(&t) {
            continue;
        }
        let what = v.path.display().to_string();
        let footer = Footer::decode(&t, &what, v.len)?;
        let footer_at = v.len - Footer::SIZE as u64;
        if footer.volume_count != v.number {
            return Err(Error::corrupt(
                &what,
                footer_at,
                format!(
                    "footer says the archive has {} volumes but this is volume {}",
                    footer.volume_count, v.number
                ),
            ));
        }
        if header_id(&v.path).is_some_and(|id| id != footer.archive_id) {
            return Err(Error::corrupt(
                &what,
                footer_at,
                "the footer and the volume header name different archives",
            ));
        }
        // Above it, only volumes of this archive count (an interrupted append, a newer generation whose
        // last volume is lost); anything else named like a volume is not ours and is not looked at.
        let stray = vols[at + 1..]
            .iter()
            .filter(|v| header_id(&v.path) == Some(footer.archive_id))
            .map(|v| v.path.clone())
            .collect();
        return Ok(Some(Newest { at, footer, stray }));
    }
    Ok(None)
}

/// One generation's index as read: a version 1 index (always generation 1) or a generation index.
pub enum Blob {
    V1(Index),
    V3(GenIndex),
}

/// Where the index blob of the generation ending at `vols[at]` lies: (volume position, byte range)
/// pieces in order (FORMAT.md 3.2).
pub fn extents(vols: &[Listed], at: usize, f: &Footer) -> Result<Vec<(usize, u64, u64)>> {
    let last = &vols[at];
    let what = last.path.display().to_string();
    let bad = |msg: &str| Error::corrupt(&what, last.len.saturating_sub(80), msg.to_string());
    let hdr = VolumeHeader::SIZE as u64;
    let Some(end) = last.len.checked_sub(Footer::SIZE as u64) else {
        return Err(bad("volume shorter than a footer"));
    };
    if f.index_offset.checked_add(f.index_stored_len) == Some(end) {
        return Ok(vec![(at, f.index_offset, end)]);
    }
    if f.version < 3 {
        return Err(bad("footer: index does not end at the footer"));
    }
    // Spanning: the last volume's bytes after its header, whole volumes before, and the start.
    let mut need = f.index_stored_len;
    let mut parts = Vec::new();
    let mut k = at;
    let mut lo = hdr;
    let mut hi = end;
    loop {
        if hi < lo {
            return Err(bad("footer: volume too short for its index"));
        }
        let have = hi - lo;
        if have >= need {
            let start = hi - need;
            if start != f.index_offset || start < hdr {
                return Err(bad(
                    "footer: the index does not start where the footer says",
                ));
            }
            parts.push((k, start, hi));
            break;
        }
        parts.push((k, lo, hi));
        need -= have;
        if k == 0 || vols[k - 1].number + 1 != vols[k].number {
            return Err(bad("footer: the index runs into a missing volume"));
        }
        k -= 1;
        hi = vols[k].len;
        lo = hdr;
    }
    parts.reverse();
    Ok(parts)
}

/// Reads, inflates and checks the index blob of the generation whose footer `f` ends `vols[at]`.
pub fn read_blob(vols: &[Listed], at: usize, f: &Footer) -> Result<Blob> {
    let what = vols[at].path.display().to_string();
    let mut blob = Vec::with_capacity(f.index_stored_len.min(1 << 30) as usize);
    for (k, a, b) in extents(vols, at, f)? {
        let v = &vols[k];
        let file = volumes::open_vol(&v.path).ctx(&v.path)?;
        let mut buf = vec![0u8; (b - a) as usize];
        file.read_exact_at(&mut buf, a).ctx(&v.path)?;
        blob.extend_from_slice(&buf);
    }
    // Version 5: the generation index is the blob's first `index_len` bytes; the paged tree follows
    // (FORMAT.md 12), read by the mount alone. Its trailer is checked here, its pages by the mount.
    let index_len = match f.version >= TREE_VERSION {
        true => {
            let t = blob.len().saturating_sub(Trailer::SIZE);
            let what = format!("{what} (index tree)");
            Trailer::decode(&blob[t..], blob.len() as u64, f.version, &what)?.index_len as usize
        }
        false => blob.len(),
    };
    // zlib inflates at most about 1032:1, so a claim beyond that is not believed when sizing the buffer.
    let believable = f.index_stored_len.saturating_mul(1032);
    let mut raw = Vec::with_capacity(f.index_raw_len.min(believable).min(1 << 28) as usize);
    flate2::read::ZlibDecoder::new(&blob[..index_len])
        .take(f.index_raw_len + 1)
        .read_to_end(&mut raw)
        .map_err(|e| {
            Error::corrupt(
                &what,
                f.index_offset,
                format!("index does not inflate: {e}"),
            )
        })?;
    if raw.len() as u64 != f.index_raw_len || checksum(&raw) != f.index_checksum {
        return Err(Error::corrupt(
            &what,
            f.index_offset,
            "index checksum mismatch",
        ));
    }
    let what = format!("{what} (index)");
    if raw.starts_with(&V1_MAGIC) {
        Index::decode(&raw, &what).map(Blob::V1)
    } else {
        GenIndex::decode_owned(raw, &what).map(Blob::V3)
    }
}

/// One generation, as readers keep it.
#[derive(Clone, Debug)]
pub struct Generation {
    pub number: u32,
    /// The format version of its footer.
    pub version: u32,
    pub first_volume: u32,
    pub last_volume: u32,
    pub versioned: bool,
    pub params: Vec<(String, String)>,
    pub bases: Bases,
    /// Rows it added: frames, chunks, contents, refs.
    pub added: Bases,
    pub hashes_first: u64,
    pub hashes: Vec<[u8; 32]>,
    /// Its entry records, version 3 with stamps (empty for a version 1 generation).
    pub area: Vec<u8>,
    /// A version 1 generation's entry table, and the length of its encoding (its entry area, which
    /// runs name only as a whole).
    pub v1_entries: Option<(Vec<Entry>, u64)>,
    pub records: Vec<SnapshotRecord>,
    pub index_checksum: u64,
    /// How many volumes its index blob may fill (FORMAT.md section 3: the bound on `volume_count`).
    pub index_room: u64,
}

/// A snapshot as readers list it.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub record: SnapshotRecord,
    /// The generation whose volumes hold what this snapshot added (the one that wrote its record, or
    /// generation 1 for the record of a plain archive's tree).
    pub generation: u32,
}

/// Every generation of an archive, and its snapshots.
#[derive(Clone, Debug)]
pub struct History {
    pub generations: Vec<Generation>,
    /// Named snapshots, oldest first (empty for a plain archive).
    pub snapshots: Vec<Snapshot>,
    /// Volumes above the newest complete footer.
    pub stray: Vec<PathBuf>,
}

/// Reads every generation of the archive whose newest complete footer is `newest`, checks the chain,
/// and returns the history and the data tables of all generations (entries left empty).
pub fn load(vols: &[Listed], newest: &Newest) -> Result<(History, Index)> {
    let what = vols[newest.at].path.display().to_string();
    let top = read_blob(vols, newest.at, &newest.footer)?;
    let mut blobs: Vec<(Footer, Blob)> = Vec::new();
    if let Blob::V3(g) = &top {
        for (k, e) in g.earlier.iter().enumerate() {
            let at = vols
                .iter()
                .position(|v| v.number == e.last_volume)
                .ok_or_else(|| {
                    Error::io(
                        volumes::data_path(
                            &volumes::base_of(&vols[newest.at].path),
                            VolumeNo(e.last_volume),
                        ),
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    )
                })?;
            let v = &vols[at];
            let vwhat = v.path.display().to_string();
            let f = Footer::decode(&tail(v)?, &vwhat, v.len)?;
            if f.index_checksum != e.index_checksum || f.volume_count != v.number {
                return Err(chain_error(
                    &what,
                    format!(
                        "generation {} ends at {}, whose footer is not the one generation {} names",
                        k + 1,
                        vwhat,
                        g.generation
                    ),
                ));
            }
            let b = read_blob(vols, at, &f)?;
            blobs.push((f, b));
        }
    }
    blobs.push((newest.footer, top));
    chain(blobs, &what, newest.stray.clone())
}

/// Checks that the generations follow each other and concatenates their tables.
fn chain(blobs: Vec<(Footer, Blob)>, what: &str, stray: Vec<PathBuf>) -> Result<(History, Index)> {
    let bad = |m: String| chain_error(what, m);
    let mut tables = Index::default();
    let mut gens: Vec<Generation> = Vec::with_capacity(blobs.len());
    let count = blobs.len();
    for (k, (footer, blob)) in blobs.into_iter().enumerate() {
        let number = k as u32 + 1;
        let first_volume = gens.last().map_or(1, |g| g.last_volume + 1);
        let bases = Bases {
            frames: tables.frames.len() as u64,
            chunks: tables.chunks.len() as u64,
            contents: tables.contents.len() as u64,
            refs: tables.refs.len() as u64,
        };
        let gen = match blob {
            Blob::V1(idx) => {
                if number != 1 || count != 1 && footer.version >= 3 {
                    return Err(bad(format!("generation {number} has a version 1 index")));
                }
                // Codec 3 came with format version 2 (FORMAT.md 2.2).
                if footer.version < 2 {
                    if let Some(i) = idx.frames.iter().position(|f| f.codec == Codec::LzExt3Sb) {
                        return Err(bad(format!(
                            "frame {i} is LZ_EXT3_SB, which needs format version 2 (archive says {})",
                            footer.version
                        )));
                    }
                }
                v1_generation(idx, footer, &mut tables)
            }
            Blob::V3(g) => {
                if footer.version < 3 {
                    return Err(bad(format!(
                        "generation {number}: a generation index under a version {} footer",
                        footer.version
                    )));
                }
                if g.generation != number || g.first_volume != first_volume {
                    return Err(bad(format!(
                        "generation {} starting at volume {} where generation {number} starting at \
                         volume {first_volume} was expected",
                        g.generation, g.first_volume
                    )));
                }
                if g.bases != bases {
                    return Err(bad(format!(
                        "generation {number}: its bases disagree with the earlier generations"
                    )));
                }
                if g.hashes_first > bases.chunks && !g.hashes.is_empty() {
                    return Err(bad(format!(
                        "generation {number}: chunk hashes start past its chunks"
                    )));
                }
                if number > 1 && !g.versioned() {
                    return Err(bad(format!("generation {number} is not versioned")));
                }
                for f in &g.frames {
                    if f.volume.0 < g.first_volume || f.volume.0 > footer.volume_count {
                        return Err(bad(format!(
                            "generation {number}: a frame in volume {}, outside its volumes",
                            f.volume
                        )));
                    }
                }
                v3_generation(g, footer, &mut tables)
            }
        };
        if gen.last_volume < gen.first_volume {
            return Err(bad(format!("generation {number} ends before it starts")));
        }
        gens.push(gen);
    }
    let snapshots = snapshots(&gens, what)?;
    if let Some(last) = gens.last() {
        tables.params = last.params.clone();
    }
    let history = History {
        generations: gens,
        snapshots,
        stray,
    };
    Ok((history, tables))
}

fn v1_generation(idx: Index, footer: Footer, tables: &mut Index) -> Generation {
    let mut area = Vec::new();
    for e in &idx.entries {
        put_entry(&mut area, e, false);
    }
    let area_len = area.len() as u64;
    let added = Bases {
        frames: idx.frames.len() as u64,
        chunks: idx.chunks.len() as u64,
        contents: idx.contents.len() as u64,
        refs: idx.refs.len() as u64,
    };
    let gen = Generation {
        number: 1,
        version: footer.version,
        first_volume: 1,
        last_volume: footer.volume_count,
        versioned: false,
        params: idx.params,
        bases: Bases::default(),
        added,
        hashes_first: 0,
        hashes: Vec::new(),
        area: Vec::new(),
        v1_entries: Some((idx.entries, area_len)),
        records: Vec::new(),
        index_checksum: footer.index_checksum,
        // Every volume its blob spans holds at least one of its bytes (and the blob was read: these bytes
        // are on disk).
        index_room: 1 + footer.index_stored_len,
    };
    tables.frames = idx.frames;
    tables.chunks = idx.chunks;
    tables.contents = idx.contents;
    tables.refs = idx.refs;
    gen
}

fn v3_generation(g: GenIndex, footer: Footer, tables: &mut Index) -> Generation {
    let added = Bases {
        frames: g.frames.len() as u64,
        chunks: g.chunks.len() as u64,
        contents: g.contents.len() as u64,
        refs: g.refs.len() as u64,
    };
    let versioned = g.versioned();
    let gen = Generation {
        number: g.generation,
        version: footer.version,
        first_volume: g.first_volume,
        last_volume: footer.volume_count,
        versioned,
        params: g.params,
        bases: g.bases,
        added,
        hashes_first: g.hashes_first,
        hashes: g.hashes,
        area: g.entry_area,
        v1_entries: None,
        records: g.snapshots,
        index_checksum: footer.index_checksum,
        // Every volume its blob spans holds at least one of its bytes (and the blob was read: these bytes
        // are on disk).
        index_room: 1 + footer.index_stored_len,
    };
    tables.frames.extend(g.frames);
    tables.dicts.extend(g.dicts);
    tables.chunks.extend(g.chunks);
    tables.contents.extend(g.contents);
    tables.refs.extend(g.refs);
    gen
}

/// The named snapshots: every record, in generation order; names unique; runs within their areas.
fn snapshots(gens: &[Generation], what: &str) -> Result<Vec<Snapshot>> {
    let mut out: Vec<Snapshot> = Vec::new();
    let plain_first = gens.first().is_some_and(|g| !g.versioned);
    for g in gens {
        for (i, r) in g.records.iter().enumerate() {
            if out.iter().any(|s| s.record.name == r.name) {
                return Err(chain_error(what, format!("two snapshots named {}", r.name)));
            }
            for run in &r.runs {
                let ok = run.generation >= 1
                    && run.generation <= g.number
                    && run
                        .offset
                        .checked_add(run.len)
                        .is_some_and(|e| e <= gens[run.generation as usize - 1].area_len());
                if !ok {
                    return Err(chain_error(
                        what,
                        format!("snapshot {}: a run outside the entry areas", r.name),
                    ));
                }
            }
            // The record an append writes for a plain archive's tree accounts for generation 1.
            let converted = plain_first && g.number == 2 && i == 0 && g.records.len() > 1;
            out.push(Snapshot {
                record: r.clone(),
                generation: if converted { 1 } else { g.number },
            });
        }
    }
    Ok(out)
}

impl Generation {
    /// The length of its entry area.
    pub fn area_len(&self) -> u64 {
        match &self.v1_entries {
            Some((_, len)) => *len,
            None => self.area.len() as u64,
        }
    }
}

impl History {
    /// Whether the archive holds named snapshots.
    pub fn versioned(&self) -> bool {
        self.generations.last().is_some_and(|g| g.versioned)
    }

    /// The entries of snapshot `k` (an index into `snapshots`), decoded from its runs.
    pub fn snapshot_entries(&self, k: usize, what: &str) -> Result<Vec<Entry>> {
        let s = &self.snapshots[k];
        let mut out = Vec::with_capacity(s.record.entries.min(1 << 24) as usize);
        for run in &s.record.runs {
            let g = &self.generations[run.generation as usize - 1];
            let w = format!(
                "{what} (snapshot {}, generation {})",
                s.record.name, g.number
            );
            match &g.v1_entries {
                Some((entries, len)) => {
                    if run.offset != 0 || run.len != *len || run.count != entries.len() as u64 {
                        return Err(chain_error(
                            &w,
                            "a run over part of a version 1 entry table",
                        ));
                    }
                    out.extend(entries.iter().cloned());
                }
                None => {
                    let bytes = &g.area[run.offset as usize..(run.offset + run.len) as usize];
                    out.extend(generation::decode_run(bytes, run.count, true, &w)?);
                }
            }
        }
        Ok(out)
    }

    /// The tree of a plain archive: every record of generation 1's entry area.
    pub fn plain_entries(&self, what: &str) -> Result<Vec<Entry>> {
        let g = &self.generations[0];
        if let Some((entries, _)) = &g.v1_entries {
            return Ok(entries.clone());
        }
        let mut c = crate::format::bytes::Cursor::new(&g.area, what);
        let mut out = Vec::new();
        while c.remaining() > 0 {
            out.push(crate::format::index::read_entry(&mut c, true)?);
        }
        Ok(out)
    }

    /// The BLAKE3 of chunk `id`, if a generation holds it (a version 1 generation holds none).
    pub fn chunk_hash(&self, id: u64) -> Option<[u8; 32]> {
        self.generations.iter().rev().find_map(|g| {
            let i = id.checked_sub(g.hashes_first)?;
            g.hashes.get(i as usize).copied()
        })
    }

    /// The bytes of the volumes of generation `number` (what it added to the archive).
    pub fn generation_bytes(&self, base: &Path, number: u32) -> u64 {
        let Some(g) = self.generations.get(number as usize - 1) else {
            return 0;
        };
        (g.first_volume..=g.last_volume)
            .map(|n| volumes::size(&volumes::data_path(base, VolumeNo(n))).unwrap_or(0))
            .sum()
    }
}
