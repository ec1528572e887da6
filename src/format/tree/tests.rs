use super::*;
use crate::format::index::Index;

fn entry(path: &str, kind: EntryKind) -> Entry {
    Entry::new(path.as_bytes().to_vec(), kind, 0o644)
}

/// The format version the tests' blobs are written as (the pages LZ4 blocks); [`blob_v`] for others.
const V: u32 = crate::format::FORMAT_VERSION;

/// A blob as this version's writer lays it out: `index_len` bytes of stand-in index, then the tree area.
fn blob_of(entries: &[Entry], index_len: u64) -> (Vec<u8>, Trailer, Directory) {
    blob_v(entries, index_len, V)
}

/// A blob as a writer of format `version` lays it out.
fn blob_v(entries: &[Entry], index_len: u64, version: u32) -> (Vec<u8>, Trailer, Directory) {
    let area = build(entries, 1, 0, 77, PageCodec::for_version(version));
    let mut blob = vec![0xAA; index_len as usize];
    blob.extend_from_slice(&area.bytes(index_len));
    let t = Trailer::decode(
        &blob[blob.len() - Trailer::SIZE..],
        blob.len() as u64,
        version,
        "t",
    )
    .unwrap();
    let at = t.dir_offset as usize;
    let raw = inflate(
        &blob[at..at + t.dir_stored as usize],
        t.dir_raw,
        t.dir_checksum,
        "t",
        0,
    )
    .unwrap();
    let d = Directory::decode(&raw, &t, "t").unwrap();
    (blob, t, d)
}

/// Page `k`'s raw body, decoded and checked (pages of format [`V`]).
fn page_body(blob: &[u8], d: &Directory, k: usize) -> Vec<u8> {
    page_body_in(PageCodec::for_version(V), blob, d, k)
}

fn page_body_in(codec: PageCodec, blob: &[u8], d: &Directory, k: usize) -> Vec<u8> {
    let p = d.pages[k];
    unpack(
        codec,
        &blob[p.offset as usize..(p.offset + u64::from(p.stored)) as usize],
        p.raw,
        p.checksum,
        "t",
        0,
    )
    .unwrap()
}

fn pages(blob: &[u8], d: &Directory) -> Vec<Page> {
    pages_in(PageCodec::for_version(V), blob, d)
}

fn pages_in(codec: PageCodec, blob: &[u8], d: &Directory) -> Vec<Page> {
    (0..d.pages.len())
        .map(|k| {
            let p = d.pages[k];
            let raw = page_body_in(codec, blob, d, k);
            let end = d.pages.get(k + 1).map_or(d.records, |q| q.first);
            Page::parse(raw, p.first..end, d.records, "t").unwrap()
        })
        .collect()
}

fn tree() -> Vec<Entry> {
    let mut v = vec![
        entry("a", EntryKind::Dir),
        entry("a-b", EntryKind::File),
        entry("a/b", EntryKind::Dir),
        entry("a/b.c", EntryKind::File),
        entry("a/b/x", EntryKind::File),
        entry("a/h", EntryKind::Hardlink),
        entry("z", EntryKind::Symlink),
    ];
    v[5].link = 4;
    v[6].target = b"a/b/x".to_vec();
    v[6].size = 5;
    v[4].xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
    v
}

/// [`tree`] validated, as the writer's entries are.
fn valid_tree() -> crate::format::index::ValidIndex {
    Index {
        entries: tree(),
        ..Default::default()
    }
    .validate("t", 0)
    .unwrap()
}

#[test]
fn directory_order_records_and_links() {
    // Validated, as the writer's entries are.
    let idx = valid_tree();
    let (blob, t, d) = blob_of(idx.entries(), 100);
    assert_eq!(t.index_len, 100);
    assert_eq!((d.records, d.unique_bytes, d.pages.len()), (8, 77, 1));
    let p = &pages(&blob, &d)[0];
    let r = |i: u64| p.record(i).unwrap();
    // Root, then its children by name (a, a-b, z), then a's (b, b.c, h), then b's (x).
    let names: Vec<&[u8]> = (0..8).map(|i| r(i).name).collect();
    assert_eq!(
        names,
        [&b""[..], b"a", b"a-b", b"z", b"b", b"b.c", b"h", b"x"]
    );
    assert_eq!((r(0).link, r(0).children, r(0).nlink), (1, 3, 3));
    assert_eq!((r(1).link, r(1).children, r(1).nlink), (4, 3, 3));
    assert_eq!((r(4).link, r(4).children, r(4).parent), (7, 1, 1));
    assert_eq!((r(7).parent, r(7).entry, r(7).nlink), (4, 4, 2));
    assert_eq!((r(6).kind, r(6).link), (EntryKind::Hardlink, 7));
    assert_eq!(r(3).target, b"a/b/x");
    let x: Vec<_> = r(7).xattrs().collect();
    assert_eq!(x, vec![(&b"user.k"[..], &b"v"[..])]);
    assert_eq!(d.page_of(7).unwrap(), (0, 0..8));
    assert!(d.page_of(8).is_none());
}

#[test]
fn many_records_span_pages_in_order() {
    let mut entries = vec![entry("d", EntryKind::Dir)];
    for i in 0..50_000 {
        entries.push(entry(&format!("d/f{i:06}"), EntryKind::File));
    }
    let (blob, _, d) = blob_of(&entries, 1);
    assert!(d.pages.len() > 10, "{} pages", d.pages.len());
    let ps = pages(&blob, &d);
    let mut n = 0;
    for p in &ps {
        let (k, range) = d.page_of(p.first).unwrap();
        assert_eq!(d.pages[k].first, p.first);
        for r in range {
            let rec = p.record(r).unwrap();
            if r >= 2 {
                assert_eq!(rec.name, format!("f{:06}", r - 2).as_bytes());
                assert_eq!(rec.parent, 1);
            }
            n += 1;
        }
    }
    assert_eq!(n, 50_002);
}

#[test]
fn hostile_trailer_directory_and_pages_are_errors() {
    let (blob, t, d) = blob_of(&tree(), 10);
    let n = blob.len() as u64;
    let tail = &blob[blob.len() - Trailer::SIZE..];
    // Any flipped byte of the trailer fails its check; a trailer that does not fit its blob is refused.
    for i in 0..Trailer::SIZE {
        let mut b = tail.to_vec();
        b[i] ^= 1;
        assert!(Trailer::decode(&b, n, V, "t").is_err(), "byte {i}");
    }
    assert!(Trailer::decode(tail, n + 1, V, "t").is_err());
    let bad = Trailer {
        index_len: t.dir_offset + 1,
        ..t
    };
    assert!(Trailer::decode(&bad.encode(), n, V, "t").is_err());
    // A directory whose pages are out of order, too large or misplaced.
    let raw = d.encode();
    for (at, v) in [(36usize, 1u8), (44, 1), (52, 0xff), (55, 0xff)] {
        let mut b = raw.clone();
        b[at] = b[at].wrapping_add(v);
        assert!(Directory::decode(&b, &t, "t").is_err(), "byte {at}");
    }
    assert!(Directory::decode(&raw[..raw.len() - 1], &t, "t").is_err());
    // Every truncation and every flipped byte of a page is an error or a page that still checks out;
    // nothing panics.
    let p = d.pages[0];
    let body = page_body(&blob, &d, 0);
    for i in 0..body.len() {
        assert!(Page::parse(body[..i].to_vec(), 0..d.records, d.records, "t").is_err());
        let mut b = body.clone();
        b[i] ^= 0x80;
        if let Ok(pg) = Page::parse(b, 0..d.records, d.records, "t") {
            for r in 0..d.records {
                assert!(pg.record(r).is_some());
            }
        }
    }
    assert!(inflate(&blob[..5], p.raw, p.checksum, "t", 0).is_err());
    // LZ4 pages: every truncation and every flipped byte of the stored page is an error (the checksum
    // of the raw page catches what the block's own structure does not).
    let stored = &blob[p.offset as usize..(p.offset + u64::from(p.stored)) as usize];
    for i in 0..stored.len() {
        assert!(unpack(PageCodec::Lz4, &stored[..i], p.raw, p.checksum, "t", 0).is_err());
        let mut b = stored.to_vec();
        b[i] ^= 0x10;
        assert!(
            unpack(PageCodec::Lz4, &b, p.raw, p.checksum, "t", 0).is_err(),
            "byte {i}"
        );
    }
    assert!(unpack(PageCodec::Lz4, stored, p.raw + 1, p.checksum, "t", 0).is_err());
    assert!(unpack(PageCodec::Lz4, stored, p.raw - 1, p.checksum, "t", 0).is_err());
}

/// Versions 5-7 store pages in zlib under "CLCTREE5", version 8 in LZ4 under "CLCTREE8": both read back
/// the same records, and a trailer whose magic is not its generation's version's is refused, naming it.
#[test]
fn page_codec_follows_the_format_version() {
    let idx = valid_tree();
    let mut names = Vec::new();
    for (version, codec, magic) in [
        (5, PageCodec::Zlib, TRAILER_MAGIC),
        (7, PageCodec::Zlib, TRAILER_MAGIC),
        (8, PageCodec::Lz4, TRAILER_MAGIC_LZ4),
    ] {
        let (blob, t, d) = blob_v(idx.entries(), 9, version);
        assert_eq!(t.pages, codec);
        let tail = &blob[blob.len() - Trailer::SIZE..];
        assert_eq!(tail[..8], magic);
        let other = if version >= 8 { 7 } else { 8 };
        let e = Trailer::decode(tail, blob.len() as u64, other, "t").unwrap_err();
        assert!(
            e.to_string().contains(&format!("format version {other}")),
            "{e}"
        );
        let ps = pages_in(codec, &blob, &d);
        let n: Vec<Vec<u8>> = (0..d.records)
            .map(|r| ps[0].record(r).unwrap().name.to_vec())
            .collect();
        names.push(n);
        // The other codec does not read these pages.
        let p = d.pages[0];
        let stored = &blob[p.offset as usize..(p.offset + u64::from(p.stored)) as usize];
        let wrong = match codec {
            PageCodec::Zlib => PageCodec::Lz4,
            PageCodec::Lz4 => PageCodec::Zlib,
        };
        assert!(unpack(wrong, stored, p.raw, p.checksum, "t", 0).is_err());
    }
    assert!(names.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn trailer_size() {
    assert_eq!(
        Trailer {
            pages: PageCodec::Lz4,
            index_len: 1,
            dir_offset: 1,
            dir_stored: 0,
            dir_raw: 0,
            dir_checksum: 0
        }
        .encode()
        .len(),
        Trailer::SIZE
    );
}

/// Random damage to real pages (several bytes changed, inserted or removed at once, 20,000 times):
/// each parses to an error or to a page whose every record reads back; nothing panics.
#[test]
fn randomly_damaged_pages_never_panic() {
    let mut entries = tree();
    entries[4]
        .xattrs
        .push((b"user.second".to_vec(), vec![7; 40]));
    let (blob, _, d) = blob_of(&entries, 3);
    let body = page_body(&blob, &d, 0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut b = body.clone();
        for _ in 0..1 + next(4) {
            let at = next(b.len());
            match next(3) {
                0 => b[at] = next(256) as u8,
                1 => b.insert(at, next(256) as u8),
                _ => {
                    b.remove(at);
                }
            }
        }
        if let Ok(pg) = Page::parse(b, 0..d.records, d.records, "t") {
            parsed += 1;
            for r in 0..d.records {
                let rec = pg.record(r).expect("a record of a page that parsed");
                let _ = rec.xattrs().count();
            }
        }
    }
    assert!(parsed < 20_000, "damage that never shows cannot be tested");
}

/// A block of literals only, as any LZ4 block encoder may write it (token, length bytes, literals).
fn lz4_literals(b: &[u8]) -> Vec<u8> {
    let mut out = vec![(b.len().min(15) as u8) << 4];
    if b.len() >= 15 {
        let mut r = b.len() - 15;
        while r >= 255 {
            out.push(255);
            r -= 255;
        }
        out.push(r as u8);
    }
    out.extend_from_slice(b);
    out
}

/// Version 8's pages are plain LZ4 blocks (FORMAT.md 12.1), not lz4_flex's own: a page written as
/// literals only reads back, and so does the fuzz seed made that way (which reaches the page's parse).
#[test]
fn lz4_pages_are_plain_lz4_blocks() {
    let idx = valid_tree();
    let (blob, _, d) = blob_v(idx.entries(), 4, 8);
    let raw = page_body(&blob, &d, 0);
    let block = lz4_literals(&raw);
    let p = d.pages[0];
    assert_eq!(
        unpack(PageCodec::Lz4, &block, p.raw, p.checksum, "t", 0).unwrap(),
        raw
    );
    let seed = include_bytes!("../../../fuzz/seeds/tree_pages/page-lz4");
    assert_eq!(seed[0] % 4, 3, "the selector of a stored page");
    let raw_len = u16::from_le_bytes([seed[1], seed[2]]);
    let mut raw = vec![0u8; usize::from(raw_len)];
    assert_eq!(
        lz4_flex::block::decompress_into(&seed[3..], &mut raw).unwrap(),
        raw.len()
    );
    let sum = checksum(&raw);
    let raw = unpack(PageCodec::Lz4, &seed[3..], u32::from(raw_len), sum, "t", 0).unwrap();
    let page = Page::parse(raw, 0..2, 3, "t").unwrap();
    assert_eq!(page.record(1).unwrap().name, b"a");
}
