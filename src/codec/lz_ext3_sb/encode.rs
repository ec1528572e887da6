//! The LZ_EXT3_SB encoder: the LZ_EXT3 match finder of `lz_ext3` (same hash table, candidates, lazy step,
//! backward extension and acceleration), run sub-block by sub-block so that no sequence crosses a
//! sub-block's end. The hash table spans the whole frame, so matches reach back up to 16 MiB across
//! sub-blocks, as in LZ_EXT3; only the sub-block edges cost ratio (+0.3-0.5 % at 64 KiB, docs/BENCHMARKS.md).

use super::super::lz_ext3::{
    write_literals_only, write_sequence, HASH_BYTES, LAST_LITERALS, MAX_OFFSET, MIN_MATCH,
    SKIP_STRENGTH,
};
use super::super::lz_match;
use super::{select_points, write_table, DEFAULT_SB_LOG, MAX_SB_LOG, MID_EVERY, MIN_SB_LOG};
use crate::codec::EncodeParams;

/// An LZ_EXT3_SB encoder that keeps its tables between calls.
#[derive(Clone, Debug)]
pub struct Encoder {
    hash_log: u32,
    candidates: usize,
    good_enough: usize,
    sb_log: u32,
    /// Largest round a match may need (0: no bound); see [`Encoder::with_max_depth`].
    max_depth: u32,
    table: Vec<u32>,
    seqs: Vec<u8>,
    starts: Vec<u32>,
    /// The mid-points: how many each sub-block has, and the points (input offset, output offset).
    mids: Vec<u8>,
    points: Vec<(u32, u32)>,
    /// Where each sequence of the sub-block being encoded starts (input offset, output offset).
    seq_starts: Vec<(u32, u32)>,
    /// Each output byte's round while encoding with a depth bound.
    rounds: Vec<u16>,
}

impl Encoder {
    /// A new encoder for `p`, clamped as `lz_ext3::Encoder` clamps it; `sb_log` to 12..=24 (0: 16).
    pub fn new(p: &EncodeParams) -> Self {
        Encoder {
            hash_log: p.hash_log.clamp(10, 24),
            candidates: p.candidates.clamp(1, 16) as usize,
            good_enough: (p.good_enough as usize).max(MIN_MATCH),
            sb_log: if p.sb_log == 0 {
                DEFAULT_SB_LOG
            } else {
                p.sb_log.clamp(MIN_SB_LOG, MAX_SB_LOG)
            },
            max_depth: 0,
            table: Vec::new(),
            seqs: Vec::new(),
            starts: Vec::new(),
            mids: Vec::new(),
            points: Vec::new(),
            seq_starts: Vec::new(),
            rounds: Vec::new(),
        }
    }

    /// Bounds the dependency depth of the frames this encoder writes to `d` rounds (0: no bound). A
    /// byte's round: a literal 1; a match's bytes max(1, r(b) for every byte b it reads in its own
    /// sub-block, r(b) + 1 for every byte of another sub-block). A decoder that walks every sub-block at
    /// once and then copies, round after round, the matches whose bytes became final in an earlier round
    /// (the GPU kernel, docs/GPU.md) needs at most `d` rounds. A match that would need more is cut to
    /// the bytes it may read, or dropped (its bytes become literals or a later match). No format change:
    /// any reader decodes these frames.
    pub fn with_max_depth(mut self, d: u32) -> Self {
        self.max_depth = d.min(u32::from(u16::MAX) - 1);
        self
    }

    /// Appends the LZ_EXT3_SB encoding of `src` (header and table, then the sequences) to `out`.
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) {
        let n = src.len();
        self.starts.clear();
        self.mids.clear();
        self.points.clear();
        crate::codec::room(&mut self.seqs, n + n / 255 + 16 * (n >> self.sb_log) + 16);
        let (table, log) =
            crate::codec::lz_match::fresh_table(&mut self.table, self.hash_log, self.candidates, n);
        let rounds = if self.max_depth > 0 {
            crate::codec::room(&mut self.rounds, n);
            self.rounds.resize(n, 1);
            Some(&mut self.rounds[..])
        } else {
            None
        };
        let st = State {
            src,
            table,
            log,
            good_enough: self.good_enough,
            out: &mut self.seqs,
            seq_starts: &mut self.seq_starts,
            rounds,
            max_depth: self.max_depth as u16,
        };
        let (starts, mids, points) = (&mut self.starts, &mut self.mids, &mut self.points);
        macro_rules! dispatch {
            ($($k:literal)*) => {
                match self.candidates {
                    $($k => st.run::<$k>(self.sb_log, starts, mids, points),)*
                    _ => unreachable!("candidates clamped to 1..=16"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
        out.reserve(self.seqs.len() + 12 + 5 * self.starts.len() + 8 * self.points.len());
        write_table(out, self.sb_log, &self.starts, &self.mids, &self.points);
        out.extend_from_slice(&self.seqs);
    }
}

/// Encodes `src` in sub-blocks of `2^p.sb_log` bytes (2^16 when 0).
pub fn compress(src: &[u8], p: &EncodeParams) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(p).compress(src, &mut out);
    out
}

struct State<'a> {
    src: &'a [u8],
    table: &'a mut [u32],
    log: u32,
    good_enough: usize,
    out: &'a mut Vec<u8>,
    /// Where each sequence of the current sub-block starts (input, output offset in the sub-block).
    seq_starts: &'a mut Vec<(u32, u32)>,
    /// With a depth bound: every byte's round so far (1 until a match covers it).
    rounds: Option<&'a mut [u16]>,
    max_depth: u16,
}

impl State<'_> {
    /// Encodes every sub-block in order, recording where each one's sequences begin and its mid-points
    /// (a point at every [`MID_EVERY`]th sequence: the ones `find_points` finds by parsing them).
    fn run<const K: usize>(
        mut self,
        sb_log: u32,
        starts: &mut Vec<u32>,
        mids: &mut Vec<u8>,
        points: &mut Vec<(u32, u32)>,
    ) {
        let n = self.src.len();
        let s = 1usize << sb_log;
        // As in LZ_EXT3, the frame's last LAST_LITERALS bytes are literals.
        let frame_limit = n.saturating_sub(LAST_LITERALS);
        let mut b = 0;
        while b < n {
            let e = (b + s).min(n);
            starts.push(self.out.len() as u32);
            self.seq_starts.clear();
            self.sub_block::<K>(b, e, e.min(frame_limit));
            mids.push(select_points(self.seq_starts, MID_EVERY, points));
            b = e;
        }
    }

    /// Encodes output `[b, e)`; matches end at or before `limit`.
    ///
    /// The hot loop, long on purpose as `lz_ext3::compress_block` is (the same search, insertion and
    /// acceleration); the one difference is the sub-block's bounds.
    fn sub_block<const K: usize>(&mut self, b: usize, e: usize, limit: usize) {
        let src = self.src;
        let at = self.out.len();
        let mut anchor = b;
        let mut ip = b;
        if limit >= b + HASH_BYTES as usize {
            // A match must start at or before `search_end` (HASH_BYTES bytes before `limit`); with
            // `limit <= n - LAST_LITERALS` every 8-byte read at a searched position is inside `src`.
            let search_end = limit - HASH_BYTES as usize;
            'outer: loop {
                let mut attempts = 1u32 << SKIP_STRENGTH;
                let (mut mpos, mut mlen) = loop {
                    if ip > search_end {
                        break 'outer;
                    }
                    let (pos, len) = self.find_and_insert::<K>(ip, limit);
                    if len != 0 {
                        break (pos, len);
                    }
                    ip += (attempts >> SKIP_STRENGTH) as usize;
                    attempts += 1;
                };
                if mlen < self.good_enough && ip < search_end {
                    let (pos, len) = self.find_and_insert::<K>(ip + 1, limit);
                    if len > mlen {
                        ip += 1;
                        mpos = pos;
                        mlen = len;
                    }
                }
                let ip0 = ip;
                // Extend backwards into the pending literals (never past the sub-block's start).
                let back = lz_match::back_len(src, anchor, ip, mpos);
                (ip, mpos, mlen) = (ip - back, mpos - back, mlen + back);
                if self.rounds.is_some() {
                    mlen = self.bound_depth(b, ip, mpos, mlen);
                    if mlen < MIN_MATCH {
                        // Too deep: no match here; search on from the next position.
                        ip = ip0 + 1;
                        continue 'outer;
                    }
                }
                self.seq_starts
                    .push(((self.out.len() - at) as u32, (anchor - b) as u32));
                write_sequence(self.out, &src[anchor..ip], ip - mpos, mlen);
                ip += mlen;
                anchor = ip;
                if ip - 2 <= search_end {
                    let p = ip - 2;
                    lz_match::enter::<K, HASH_BYTES>(src, self.table, self.log, p);
                }
            }
        }
        if anchor < e {
            self.seq_starts
                .push(((self.out.len() - at) as u32, (anchor - b) as u32));
            write_literals_only(self.out, &src[anchor..e]);
        }
    }

    /// With a depth bound: how much of the match at `ip` (sub-block start `b`) reading from `mpos` may be
    /// kept (its longest prefix whose round stays within the bound; under MIN_MATCH: none), and the kept
    /// bytes' rounds recorded.
    fn bound_depth(&mut self, b: usize, ip: usize, mpos: usize, mlen: usize) -> usize {
        let Some(r) = self.rounds.as_deref_mut() else {
            return mlen;
        };
        let off = ip - mpos;
        let mut rd = 1u16;
        let mut keep = mlen;
        for (x, &rx) in r.iter().enumerate().skip(mpos).take(off.min(mlen)) {
            let v = if x >= b { rx } else { rx + 1 };
            if v > self.max_depth {
                keep = x - mpos;
                break;
            }
            rd = rd.max(v);
        }
        if keep >= MIN_MATCH {
            r[ip..ip + keep].fill(rd);
        }
        keep
    }

    /// `lz_ext3::find_and_insert`: the best match at `ip` ending by `limit` among the bucket's
    /// candidates (length 0: none of `HASH_BYTES`), then `ip` is inserted.
    #[inline(always)]
    fn find_and_insert<const K: usize>(&mut self, ip: usize, limit: usize) -> (usize, usize) {
        lz_match::find_and_insert::<K, HASH_BYTES>(
            self.src,
            self.table,
            self.log,
            ip,
            limit,
            self.good_enough,
            MAX_OFFSET,
        )
    }
}
