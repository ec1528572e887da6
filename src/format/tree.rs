//! The paged tree of format version 5 (FORMAT.md 12): a generation's tree in *directory order*, cut
//! into independently compressed and checksummed pages, so that a mount reads a small page directory
//! at open and each page only when something looks into it. Version 8 stores the pages as LZ4 blocks
//! instead of zlib streams (FORMAT.md 12.1): the trailer's magic says which.
//!
//! ```text
//! index blob (v5) = [zlib(generation index): G bytes][page 0]…[page P−1][zlib(directory)][trailer]
//!
//! trailer (48 bytes, the blob's last):
//! 0  8  magic "CLCTREE5" (pages zlib, versions 5-7) or "CLCTREE8" (pages LZ4 blocks, version 8 on)
//! 8  8  index_len     G, the zlib generation index's length
//! 16 8  dir_offset    from the blob's start
//! 24 4  dir_stored    zlib length of the directory
//! 28 4  dir_raw       its length inflated (≤ MAX_DIR_RAW)
//! 32 8  dir_checksum  xxh3 of the raw directory
//! 40 8  check         xxh3 of bytes 0..40
//!
//! directory (raw): "CLCDIR05", u32 generation, u32 flags, u64 records, u64 unique_bytes, u32 pages,
//!   pages × (u64 first_record, u64 offset from the blob's start, u32 stored, u32 raw, u64 checksum)
//! page (raw): u32 count, count × record
//! record (v: a LEB128 value; vbytes: v length, then the bytes): u8 kind, vbytes name,
//!   v (r − parent), v mode, v uid, v gid, v zigzag(mtime_sec), v mtime_nsec, v size, v rdev,
//!   v entry + 1, v link + 1, v children, v nlink, vbytes target, v xattr count,
//!   count × (vbytes name, vbytes value)
//! ```
//!
//! Record 0 is the root; every directory's children are consecutive records sorted by name, and
//! directories are expanded in record order (breadth first), so a record's parent comes before it and a
//! directory's children after it. A record's number is its inode (number + 1 at the mount).

use super::bytes::{Cursor, PutLe};
use super::checksum;
use super::index::{Entry, EntryKind, NONE};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::{Read, Write};

pub const TRAILER_MAGIC: [u8; 8] = *b"CLCTREE5";
/// The trailer's magic from format version 8 on: the pages are LZ4 blocks (FORMAT.md 12.1).
pub const TRAILER_MAGIC_LZ4: [u8; 8] = *b"CLCTREE8";
pub const DIR_MAGIC: [u8; 8] = *b"CLCDIR05";
/// A page is closed once its raw bytes reach this (a record is never split).
pub const PAGE_TARGET: usize = 64 << 10;
/// Readers refuse a page larger than this, raw or stored (one record holds at most 64 KiB of xattrs,
/// a 4 KiB target and a 255-byte name, so a page written by clc stays below 192 KiB).
pub const MAX_PAGE: u32 = 1 << 20;
/// Readers refuse a directory larger than this raw (32 bytes a page: 2^20 pages, 64 GiB of pages).
pub const MAX_DIR_RAW: u32 = 32 << 20;
/// The fewest bytes a record takes (one a field).
const REC_MIN: usize = 17;

/// How a tree's pages are stored (the directory is zlib in every version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageCodec {
    /// A zlib stream (format versions 5-7; trailer magic "CLCTREE5").
    Zlib,
    /// One LZ4 block, without a size prefix (format version 8 on; "CLCTREE8"): inflating a page is
    /// what a listing of a large tree spends its time on, and LZ4 decodes several times faster.
    Lz4,
}

impl PageCodec {
    /// The codec a writer of format `version` stores pages with.
    pub fn for_version(version: u32) -> PageCodec {
        if version >= super::LZ4_PAGES_VERSION {
            PageCodec::Lz4
        } else {
            PageCodec::Zlib
        }
    }

    fn magic(self) -> [u8; 8] {
        match self {
            PageCodec::Zlib => TRAILER_MAGIC,
            PageCodec::Lz4 => TRAILER_MAGIC_LZ4,
        }
    }
}

/// The blob's last bytes: where the generation index ends and the directory lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// From the magic.
    pub pages: PageCodec,
    pub index_len: u64,
    pub dir_offset: u64,
    pub dir_stored: u32,
    pub dir_raw: u32,
    pub dir_checksum: u64,
}

impl Trailer {
    pub const SIZE: usize = 48;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.extend_from_slice(&self.pages.magic());
        v.put_u64(self.index_len);
        v.put_u64(self.dir_offset);
        v.put_u32(self.dir_stored);
        v.put_u32(self.dir_raw);
        v.put_u64(self.dir_checksum);
        let c = checksum(&v);
        v.put_u64(c);
        let mut out = [0u8; Self::SIZE];
        out.copy_from_slice(&v);
        out
    }

    /// Parses the trailer of a blob of `blob_len` bytes of a generation of format `version` and checks
    /// that the pieces it names fit, and that its magic is the one of that version.
    pub fn decode(b: &[u8], blob_len: u64, version: u32, what: &str) -> Result<Trailer> {
        let mut c = Cursor::new(b, what);
        let magic = c.array::<8>()?;
        let pages = PageCodec::for_version(version);
        if magic != pages.magic() {
            let m = if magic == TRAILER_MAGIC || magic == TRAILER_MAGIC_LZ4 {
                format!(
                    "tree trailer: magic {} in a generation of format version {version}",
                    String::from_utf8_lossy(&magic)
                )
            } else {
                "tree trailer: bad magic".to_string()
            };
            return Err(Error::corrupt(what, 0, m));
        }
        let t = Trailer {
            pages,
            index_len: c.u64()?,
            dir_offset: c.u64()?,
            dir_stored: c.u32()?,
            dir_raw: c.u32()?,
            dir_checksum: c.u64()?,
        };
        if c.u64()? != checksum(&b[..40]) {
            return Err(Error::corrupt(what, 40, "tree trailer: checksum mismatch"));
        }
        let end = t.dir_offset.checked_add(u64::from(t.dir_stored));
        if t.index_len == 0
            || t.index_len > t.dir_offset
            || end != blob_len.checked_sub(Self::SIZE as u64)
            || t.dir_raw > MAX_DIR_RAW
            || t.dir_stored > MAX_DIR_RAW
        {
            return Err(Error::corrupt(
                what,
                8,
                format!(
                    "tree trailer: index {} bytes, directory at {}+{} ({} raw) do not fit a blob of {blob_len}",
                    t.index_len, t.dir_offset, t.dir_stored, t.dir_raw
                ),
            ));
        }
        Ok(t)
    }
}

/// One page as the directory names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRef {
    pub first: u64,
    /// From the blob's start.
    pub offset: u64,
    pub stored: u32,
    pub raw: u32,
    pub checksum: u64,
}

/// The page directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    pub generation: u32,
    pub flags: u32,
    pub records: u64,
    pub unique_bytes: u64,
    pub pages: Vec<PageRef>,
}

impl Directory {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(36 + self.pages.len() * 32);
        v.extend_from_slice(&DIR_MAGIC);
        v.put_u32(self.generation);
        v.put_u32(self.flags);
        v.put_u64(self.records);
        v.put_u64(self.unique_bytes);
        v.put_u32(self.pages.len() as u32);
        for p in &self.pages {
            v.put_u64(p.first);
            v.put_u64(p.offset);
            v.put_u32(p.stored);
            v.put_u32(p.raw);
            v.put_u64(p.checksum);
        }
        v
    }

    /// Parses a raw directory and checks it against the trailer `t`: pages start at record 0, their
    /// first records increase strictly and stay below `records`, they lie one after the other from the
    /// end of the generation index to the directory, and their sizes are bounded.
    pub fn decode(raw: &[u8], t: &Trailer, what: &str) -> Result<Directory> {
        let mut c = Cursor::new(raw, what);
        if c.array::<8>()? != DIR_MAGIC {
            return Err(c.err("tree directory: bad magic"));
        }
        let (generation, flags, records, unique_bytes) = (c.u32()?, c.u32()?, c.u64()?, c.u64()?);
        let n = c.u32()? as usize;
        if n.saturating_mul(32) != c.remaining() || n == 0 || records == 0 {
            return Err(c.err(format!(
                "tree directory: {n} pages of {records} records in {} bytes",
                c.remaining()
            )));
        }
        let mut pages: Vec<PageRef> = Vec::with_capacity(n);
        let mut at = t.index_len;
        for k in 0..n {
            let p = PageRef {
                first: c.u64()?,
                offset: c.u64()?,
                stored: c.u32()?,
                raw: c.u32()?,
                checksum: c.u64()?,
            };
            let first_ok = match pages.last() {
                None => p.first == 0,
                Some(q) => p.first > q.first && p.first < records,
            };
            if !first_ok || p.offset != at || p.stored > MAX_PAGE || p.raw > MAX_PAGE {
                return Err(c.err(format!(
                    "tree directory: page {k} (record {}, at {}+{}, {} raw) out of order or too large",
                    p.first, p.offset, p.stored, p.raw
                )));
            }
            at += u64::from(p.stored);
            pages.push(p);
        }
        if at != t.dir_offset {
            return Err(c.err("tree directory: pages do not end where the directory starts"));
        }
        Ok(Directory {
            generation,
            flags,
            records,
            unique_bytes,
            pages,
        })
    }

    /// The page holding record `r` and the records it holds.
    pub fn page_of(&self, r: u64) -> Option<(usize, std::ops::Range<u64>)> {
        if r >= self.records {
            return None;
        }
        let k = self
            .pages
            .partition_point(|p| p.first <= r)
            .checked_sub(1)?;
        let end = self.pages.get(k + 1).map_or(self.records, |p| p.first);
        Some((k, self.pages[k].first..end))
    }
}

/// One record, borrowed from its page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: EntryKind,
    pub name: &'a [u8],
    pub parent: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub size: u64,
    pub rdev: u64,
    /// The entry's id in its tree's entry table (path order); [`NONE`] for the root.
    pub entry: u64,
    /// Directory: its first child's record. Hardlink: the record of the file it names. Else [`NONE`].
    pub link: u64,
    /// Directory: its number of children. Else 0.
    pub children: u64,
    pub nlink: u32,
    pub target: &'a [u8],
    /// The xattrs, still encoded: count × (bytes name, bytes value).
    pub xattrs: &'a [u8],
    pub xattr_count: u32,
}

impl<'a> Record<'a> {
    /// The xattrs as (name, value) pairs (already checked when the page was read).
    pub fn xattrs(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut c = Cursor::new(self.xattrs, "");
        (0..self.xattr_count).map_while(move |_| Some((c.var_bytes().ok()?, c.var_bytes().ok()?)))
    }
}

/// Encodes record `r` (number `at`): every integer a LEB128 value; the parent as `at − parent`, `entry`
/// and `link` as value + 1 (0: none), `mtime_sec` zigzag-coded (FORMAT.md 12).
fn put_record(v: &mut Vec<u8>, at: u64, r: &Record) {
    v.put_u8(r.kind as u8);
    v.put_var(r.name.len() as u64);
    v.extend_from_slice(r.name);
    v.put_var(at - r.parent);
    v.put_var(u64::from(r.mode));
    v.put_var(u64::from(r.uid));
    v.put_var(u64::from(r.gid));
    v.put_var(((r.mtime_sec << 1) ^ (r.mtime_sec >> 63)) as u64);
    v.put_var(u64::from(r.mtime_nsec));
    v.put_var(r.size);
    v.put_var(r.rdev);
    v.put_var(r.entry.wrapping_add(1));
    v.put_var(r.link.wrapping_add(1));
    v.put_var(r.children);
    v.put_var(u64::from(r.nlink));
    v.put_var(r.target.len() as u64);
    v.extend_from_slice(r.target);
    v.put_var(u64::from(r.xattr_count));
    v.extend_from_slice(r.xattrs);
}

/// Reads one record at the cursor, checking what can be checked without other pages: a valid kind, a
/// name (1 to 255 bytes, no '/' or NUL, not "." or "..": the root's only, empty), the parent before
/// it, a directory's children after it and within `records`, a hardlink's file within `records`,
/// xattrs within Linux's limits.
fn read_record<'a>(c: &mut Cursor<'a>, r: u64, records: u64) -> Result<Record<'a>> {
    let at = c.pos();
    let kind = c.u8()?;
    let kind = EntryKind::from_u8(kind).ok_or_else(|| c.err(format!("record {r}: kind {kind}")))?;
    let name = c.var_bytes()?;
    let up = c.var()?;
    let small = |c: &mut Cursor<'a>| -> Result<u32> {
        let v = c.var()?;
        u32::try_from(v).map_err(|_| c.err(format!("record {r}: {v} does not fit 32 bits")))
    };
    let (mode, uid, gid) = (small(c)?, small(c)?, small(c)?);
    let z = c.var()?;
    let mtime_sec = (z >> 1) as i64 ^ -((z & 1) as i64);
    let mtime_nsec = small(c)?;
    let (size, rdev) = (c.var()?, c.var()?);
    let entry = c.var()?.wrapping_sub(1);
    let link = c.var()?.wrapping_sub(1);
    let children = c.var()?;
    let nlink = small(c)?;
    let target = c.var_bytes()?;
    let rec = Record {
        kind,
        name,
        parent: r.wrapping_sub(up),
        mode,
        uid,
        gid,
        mtime_sec,
        mtime_nsec,
        size,
        rdev,
        entry,
        link,
        children,
        nlink,
        target,
        xattr_count: 0,
        xattrs: &[],
    };
    let nx = small(c)?;
    let xat = c.pos();
    let bad =
        |c: &Cursor, m: String| Error::corrupt(c.what(), at as u64, format!("record {r}: {m}"));
    if nx != 0 {
        // Rare (most records have none): checked as the index checks them, through owned pairs.
        let mut x = Vec::new();
        for _ in 0..nx.min(super::index::MAX_XATTRS as u32 + 1) {
            x.push((c.var_bytes()?.to_vec(), c.var_bytes()?.to_vec()));
        }
        if nx as usize != x.len() {
            return Err(bad(c, format!("{nx} xattrs")));
        }
        super::index::check_xattrs(&x).map_err(|m| bad(c, m))?;
    }
    let bad = |m: String| bad(c, m);
    let xattrs = &c_slice(c, xat);
    let name_ok = if r == 0 {
        name.is_empty() && kind == EntryKind::Dir && up == 0
    } else {
        !name.is_empty()
            && name.len() <= 255
            && !name.iter().any(|&b| b == b'/' || b == 0)
            && name != b"."
            && name != b".."
            && (1..=r).contains(&up)
    };
    if !name_ok {
        return Err(bad(format!(
            "name \"{}\" or parent {} not allowed",
            String::from_utf8_lossy(name).escape_debug(),
            rec.parent
        )));
    }
    let links_ok = match kind {
        EntryKind::Dir => {
            rec.children == 0
                || (rec.link > r
                    && rec
                        .link
                        .checked_add(rec.children)
                        .is_some_and(|e| e <= records))
        }
        EntryKind::Hardlink => rec.link < records && rec.link != r,
        _ => rec.children == 0,
    };
    if !links_ok {
        return Err(bad(format!(
            "children {}+{} of {records} records",
            rec.link, rec.children
        )));
    }
    Ok(Record {
        xattr_count: nx,
        xattrs,
        ..rec
    })
}

/// The bytes a cursor moved over since `from`.
fn c_slice<'a>(c: &Cursor<'a>, from: usize) -> &'a [u8] {
    c.since(from)
}

/// A page as read: its raw bytes and each record decoded (its numbers, and where its byte strings lie
/// in the raw bytes), so that a record costs no parsing after the page's one checked pass.
#[derive(Debug)]
pub struct Page {
    pub first: u64,
    raw: Vec<u8>,
    recs: Vec<Fixed>,
}

/// A byte string of a page's raw bytes: (start, length).
#[derive(Clone, Copy, Debug)]
struct Span(u32, u32);

impl Span {
    fn of(raw: &[u8], s: &[u8]) -> Span {
        // `s` is a subslice of `raw` (a page is at most 1 MiB, so both fit 32 bits).
        Span(
            (s.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize) as u32,
            s.len() as u32,
        )
    }

    fn get(self, raw: &[u8]) -> Option<&[u8]> {
        raw.get(self.0 as usize..(self.0 as usize).checked_add(self.1 as usize)?)
    }
}

/// A record's numbers, decoded and checked once, with [`Span`]s for its byte strings.
#[derive(Clone, Copy, Debug)]
struct Fixed {
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_nsec: u32,
    nlink: u32,
    xattr_count: u32,
    parent: u64,
    mtime_sec: i64,
    size: u64,
    rdev: u64,
    entry: u64,
    link: u64,
    children: u64,
    name: Span,
    target: Span,
    xattrs: Span,
}

impl Page {
    /// Parses and checks raw page bytes holding records `range` of a tree of `records` (also that
    /// consecutive children of one directory are sorted by name).
    pub fn parse(
        raw: Vec<u8>,
        range: std::ops::Range<u64>,
        records: u64,
        what: &str,
    ) -> Result<Page> {
        let mut c = Cursor::new(&raw, what);
        let n = u64::from(c.u32()?);
        if n != range.end - range.start {
            return Err(c.err(format!(
                "page holds {n} records, the directory says {}",
                range.end - range.start
            )));
        }
        let mut recs = Vec::with_capacity((n as usize).min(raw.len() / REC_MIN + 1));
        let mut prev: Option<(u64, &[u8])> = None;
        for r in range.clone() {
            let rec = read_record(&mut c, r, records)?;
            if let Some((p, name)) = prev {
                if p == rec.parent && name >= rec.name {
                    return Err(c.err(format!("record {r}: names out of order")));
                }
            }
            prev = Some((rec.parent, rec.name));
            recs.push(Fixed {
                kind: rec.kind,
                mode: rec.mode,
                uid: rec.uid,
                gid: rec.gid,
                mtime_nsec: rec.mtime_nsec,
                nlink: rec.nlink,
                xattr_count: rec.xattr_count,
                parent: rec.parent,
                mtime_sec: rec.mtime_sec,
                size: rec.size,
                rdev: rec.rdev,
                entry: rec.entry,
                link: rec.link,
                children: rec.children,
                name: Span::of(&raw, rec.name),
                target: Span::of(&raw, rec.target),
                xattrs: Span::of(&raw, rec.xattrs),
            });
        }
        if c.remaining() != 0 {
            return Err(c.err("page: bytes after its last record"));
        }
        Ok(Page {
            first: range.start,
            raw,
            recs,
        })
    }

    /// Whether record `r` is one of this page's.
    pub fn holds(&self, r: u64) -> bool {
        r >= self.first && r - self.first < self.recs.len() as u64
    }

    /// Record `r` (a record of this page).
    pub fn record(&self, r: u64) -> Option<Record<'_>> {
        let k = usize::try_from(r.checked_sub(self.first)?).ok()?;
        let f = self.recs.get(k)?;
        Some(Record {
            kind: f.kind,
            name: f.name.get(&self.raw)?,
            parent: f.parent,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            mtime_sec: f.mtime_sec,
            mtime_nsec: f.mtime_nsec,
            size: f.size,
            rdev: f.rdev,
            entry: f.entry,
            link: f.link,
            children: f.children,
            nlink: f.nlink,
            target: f.target.get(&self.raw)?,
            xattrs: f.xattrs.get(&self.raw)?,
            xattr_count: f.xattr_count,
        })
    }

    pub fn heap_bytes(&self) -> usize {
        self.raw.capacity() + self.recs.capacity() * std::mem::size_of::<Fixed>()
    }
}

/// Inflates `stored` into at most `raw_len` bytes and checks their xxh3.
pub fn inflate(stored: &[u8], raw_len: u32, sum: u64, what: &str, at: u64) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(raw_len as usize);
    flate2::read::ZlibDecoder::new(stored)
        .take(u64::from(raw_len) + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Error::corrupt(what, at, format!("does not inflate: {e}")))?;
    if raw.len() != raw_len as usize || checksum(&raw) != sum {
        return Err(Error::corrupt(what, at, "checksum mismatch"));
    }
    Ok(raw)
}

/// Page bytes `stored` in `codec`, decoded into exactly `raw_len` bytes whose xxh3 is `sum`.
pub fn unpack(
    codec: PageCodec,
    stored: &[u8],
    raw_len: u32,
    sum: u64,
    what: &str,
    at: u64,
) -> Result<Vec<u8>> {
    match codec {
        PageCodec::Zlib => inflate(stored, raw_len, sum, what, at),
        PageCodec::Lz4 => {
            let mut raw = vec![0u8; raw_len as usize];
            let n = lz4_flex::block::decompress_into(stored, &mut raw)
                .map_err(|e| Error::corrupt(what, at, format!("does not decode (LZ4): {e}")))?;
            if n != raw.len() || checksum(&raw) != sum {
                return Err(Error::corrupt(what, at, "checksum mismatch"));
            }
            Ok(raw)
        }
    }
}

/// Page bytes `raw` stored in `codec`.
fn pack_page(codec: PageCodec, raw: &[u8]) -> Vec<u8> {
    match codec {
        PageCodec::Zlib => deflate(raw),
        PageCodec::Lz4 => lz4_flex::block::compress(raw),
    }
}

fn deflate(raw: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
    z.write_all(raw).expect("writing to a Vec cannot fail");
    z.finish().expect("writing to a Vec cannot fail")
}

/// The tree area of a blob, made by [`build`]: the compressed pages and the directory (page offsets
/// relative to the tree area until [`TreeArea::bytes`] places them).
pub struct TreeArea {
    codec: PageCodec,
    pages: Vec<u8>,
    dir: Directory,
}

impl TreeArea {
    /// What follows a generation index of `index_len` zlib bytes: pages, directory, trailer.
    pub fn bytes(&self, index_len: u64) -> Vec<u8> {
        let mut dir = self.dir.clone();
        for p in &mut dir.pages {
            p.offset += index_len;
        }
        let raw = dir.encode();
        let z = deflate(&raw);
        let t = Trailer {
            pages: self.codec,
            index_len,
            dir_offset: index_len + self.pages.len() as u64,
            dir_stored: z.len() as u32,
            dir_raw: raw.len() as u32,
            dir_checksum: checksum(&raw),
        };
        let mut out = Vec::with_capacity(self.pages.len() + z.len() + Trailer::SIZE);
        out.extend_from_slice(&self.pages);
        out.extend_from_slice(&z);
        out.extend_from_slice(&t.encode());
        out
    }

    pub fn records(&self) -> u64 {
        self.dir.records
    }
}

/// The last component of a path.
fn name_of(p: &[u8]) -> &[u8] {
    p.rsplit(|&c| c == b'/').next().unwrap_or(p)
}

/// The tree of `entries` (a validated entry table: sorted by path, parents before children, hardlinks
/// naming earlier files) in directory order, paged, its pages stored in `codec`. `generation`, `flags`
/// and `unique_bytes` are recorded in the directory for the mount.
pub fn build(
    entries: &[Entry],
    generation: u32,
    flags: u32,
    unique_bytes: u64,
    codec: PageCodec,
) -> TreeArea {
    // Each directory's children in path order, which is name order within one directory.
    let mut dir_of: HashMap<&[u8], usize> = HashMap::new();
    let mut kids: Vec<Vec<usize>> = vec![Vec::new()]; // slot 0: the root
    let mut slot_of = vec![usize::MAX; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        let pp = &e.path[..e.path.len() - name_of(&e.path).len()];
        let pp = pp.strip_suffix(b"/").unwrap_or(pp);
        let s = if pp.is_empty() {
            0
        } else {
            dir_of.get(pp).copied().unwrap_or(0)
        };
        kids[s].push(i);
        if e.kind == EntryKind::Dir {
            slot_of[i] = kids.len();
            dir_of.insert(&e.path, kids.len());
            kids.push(Vec::new());
        }
    }
    // Breadth first: record 0 the root, then each directory's children when it is reached.
    let mut order: Vec<usize> = Vec::with_capacity(entries.len()); // record r + 1 → entry
    let mut first_child = vec![0u64; kids.len()];
    let mut parent_rec = vec![0u64; entries.len()];
    first_child[0] = 1;
    order.extend(&kids[0]);
    let mut r = 0;
    while r < order.len() {
        let i = order[r];
        if slot_of[i] != usize::MAX {
            let s = slot_of[i];
            first_child[s] = order.len() as u64 + 1;
            for &k in &kids[s] {
                parent_rec[k] = r as u64 + 1;
            }
            order.extend(&kids[s]);
        }
        r += 1;
    }
    let mut rec_of = vec![NONE; entries.len()];
    for (r, &i) in order.iter().enumerate() {
        rec_of[i] = r as u64 + 1;
    }
    let mut names_of_file: HashMap<usize, u32> = HashMap::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Hardlink) {
        *names_of_file.entry(e.link as usize).or_insert(1) += 1;
    }
    let subdirs = |s: usize| {
        kids[s]
            .iter()
            .filter(|&&k| entries[k].kind == EntryKind::Dir)
            .count() as u32
    };
    let records = order.len() as u64 + 1;
    // Each page's first record and raw body; compressed at the end, on the rayon pool.
    let mut bodies: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut raw: Vec<u8> = Vec::new();
    let mut count = 0u32;
    let mut first = 0u64;
    let mut close = |raw: &mut Vec<u8>, count: &mut u32, first: u64, next: u64| {
        let mut body = Vec::with_capacity(raw.len() + 4);
        body.put_u32(*count);
        body.extend_from_slice(raw);
        bodies.push((first, body));
        raw.clear();
        *count = 0;
        next
    };
    let root = Record {
        kind: EntryKind::Dir,
        name: b"",
        parent: 0,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
        size: 0,
        rdev: 0,
        entry: NONE,
        link: if kids[0].is_empty() { NONE } else { 1 },
        children: kids[0].len() as u64,
        nlink: 2 + subdirs(0),
        target: b"",
        xattrs: &[],
        xattr_count: 0,
    };
    put_record(&mut raw, 0, &root);
    count += 1;
    let mut xbuf = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let r = k as u64 + 1;
        if raw.len() >= PAGE_TARGET {
            first = close(&mut raw, &mut count, first, r);
        }
        let e = &entries[i];
        xbuf.clear();
        for (n, v) in &e.xattrs {
            xbuf.put_var(n.len() as u64);
            xbuf.extend_from_slice(n);
            xbuf.put_var(v.len() as u64);
            xbuf.extend_from_slice(v);
        }
        let (link, children, nlink) = match e.kind {
            EntryKind::Dir => {
                let s = slot_of[i];
                let n = kids[s].len() as u64;
                (
                    if n == 0 { NONE } else { first_child[s] },
                    n,
                    2 + subdirs(s),
                )
            }
            EntryKind::Hardlink => (rec_of.get(e.link as usize).copied().unwrap_or(NONE), 0, 1),
            EntryKind::File => (NONE, 0, names_of_file.get(&i).copied().unwrap_or(1)),
            _ => (NONE, 0, 1),
        };
        put_record(
            &mut raw,
            r,
            &Record {
                kind: e.kind,
                name: name_of(&e.path),
                parent: parent_rec[i],
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime_sec: e.mtime_sec,
                mtime_nsec: e.mtime_nsec,
                size: e.size,
                rdev: e.rdev,
                entry: i as u64,
                link,
                children,
                nlink,
                target: &e.target,
                xattrs: &xbuf,
                xattr_count: e.xattrs.len() as u32,
            },
        );
        count += 1;
    }
    close(&mut raw, &mut count, first, 0);
    let packed: Vec<(Vec<u8>, u64)> = {
        use rayon::prelude::*;
        bodies
            .par_iter()
            .map(|(_, body)| (pack_page(codec, body), checksum(body)))
            .collect()
    };
    let mut pages = Vec::with_capacity(packed.iter().map(|(z, _)| z.len()).sum());
    let mut refs: Vec<PageRef> = Vec::with_capacity(bodies.len());
    for ((first, body), (z, sum)) in bodies.iter().zip(&packed) {
        refs.push(PageRef {
            first: *first,
            offset: pages.len() as u64,
            stored: z.len() as u32,
            raw: body.len() as u32,
            checksum: *sum,
        });
        pages.extend_from_slice(z);
    }
    TreeArea {
        codec,
        pages,
        dir: Directory {
            generation,
            flags,
            records,
            unique_bytes,
            pages: refs,
        },
    }
}

#[cfg(test)]
mod tests;
