// LZ_EXT3 encoder, kernels run in order over a batch of frames (see docs/GPU.md).
//
//   lz_build_l one work-group per segment (the host's default; lz_build4 with CLC_GPU_BUILD=4, after a
//             clear of the tables): a last-occurrence table per segment built in local memory
//             (atomic_max, order-independent, so the result is deterministic), written out whole.
//   lz_build4 one work-item per 4 input bytes: the same tables with global atomic_max.
//   lz_anchor one work-group per segment: the segment's anchors (positions whose 8-byte hash has its
//             top ABITS bits zero, content-defined, about one in 2^ABITS) as (hash << 32 | pos),
//             sorted, at most ACAP (the first ACAP by position).
//   lz_merge  one work-item per anchor slot, run once per round r: merges the sorted anchor runs of
//             2^r segments pairwise (each entry's rank in the other run by binary search), until
//             each frame has one sorted list.
//   lz_link   one work-item per anchor slot: an anchor whose predecessors in its frame's sorted list
//             have the same hash gets far[pos] = the offset of the best of the latest few: earlier
//             anchors with equal bytes, however far back in the frame (up to 16 MiB).
//   lz_find   one work-group per segment (SUB bytes): every work-item finds the best match for its
//             positions (local Top-K table + previous segment + the far offsets of the nearest
//             anchors before and after it) and stores it packed as (len << 24 | offset) in `matches`.
//   lz_parse  one work-item per parse sub-block (PSUB bytes, smaller than a segment so that there
//             are many of them): greedy parse with one-step lazy matching over `matches`; sequences
//             2..n go to a per-sub-block scratch region, the first one is kept aside because its
//             literal run may start in an earlier sub-block.
//   lz_parse_w the same parse with 32 work-items per sub-block (the host's default; same bytes): each
//             walks a slice from a guessed entry, one follows the true chain over them, then each
//             writes its slice's sequences from the true entry.
//   lz_plan   one work-group per frame: links literal runs across sub-blocks and gives every
//             sub-block its output position (an exclusive prefix sum), with scans in local memory.
//   lz_emit   one work-group per sub-block: writes the first sequence header, the literal bytes lying
//             in its own range and the scratch bytes straight into the frame's final output.
//
// Build-time constants (-D): SUB_LOG, PSUB_LOG, WG, PWG, HASH_LOG, LHASH_LOG, CANDS, GOOD, MIN_MATCH,
// ABITS, ACAP, AWG, BACK, BACK_BELOW.
// Layout: frame f starts at in + fr_base[f] (a multiple of 1 << SUB_LOG); segment g (lz_build4,
// lz_find) covers input bytes [g << SUB_LOG, +SUB), sb_frame[g] is its frame. The frame's parse
// sub-blocks are fr_first_sb[f] .. fr_first_sb[f] + fr_nsb[f] (fr_first_sb[f] = fr_base[f] >> PSUB_LOG);
// sub-block s covers frame bytes [(s - fr_first_sb[f]) << PSUB_LOG, +PSUB). Positions inside a frame
// are uint (frames are <= 16 MiB).

#define SUB (1u << SUB_LOG)
#define PSUB (1u << PSUB_LOG)
#define LSIZE (1u << LHASH_LOG)
#define LAST_LITS 12u
#define SCRATCH (PSUB + PSUB / 255u + 64u)
#define INFO 8u
#define NO_POS 0xffffffffu
#define OVERFLOW 0xffffffffu

// info[s * INFO + ...]
#define I_NSEQ 0
#define I_P0 1
#define I_LEN0 2
#define I_OFF0 3
#define I_TAIL 4
#define I_SLEN 5

// The 4 bytes at p, little-endian. On a little-endian device from the one or two aligned words that
// hold them (the buffers are aligned, and their sizes multiples of 4): two loads instead of four.
inline uint read32(const __global uchar *p) {
#ifdef __ENDIAN_LITTLE__
    size_t a = (size_t)p;
    const __global uint *w = (const __global uint *)(a & ~(size_t)3);
    uint sh = (uint)(a & 3u) * 8u;
    uint lo = w[0];
    return sh == 0u ? lo : (lo >> sh) | (w[1] << (32u - sh));
#else
    return (uint)p[0] | ((uint)p[1] << 8) | ((uint)p[2] << 16) | ((uint)p[3] << 24);
#endif
}

// Trailing zero bits of x != 0 (OpenCL C 1.2 has no ctz).
inline uint ctz32(uint x) { return popcount((x & (0u - x)) - 1u); }
inline uint ctz64(ulong x) { return (uint)popcount((x & (0UL - x)) - 1UL); }

inline uint hash_l(uint v) { return (v * 2654435761u) >> (32 - LHASH_LOG); }

// Last position (exclusive) a match may reach in a frame of n bytes; 0 when none fits.
inline uint match_limit(uint n) { return n > LAST_LITS ? n - LAST_LITS : 0u; }

// Number of extension bytes for a 4-bit field holding v (v >= 15 continues).
inline uint ext_len(uint v) { return v >= 15u ? (v - 15u) / 255u + 1u : 0u; }

// Bytes of one sequence with `lit` literals and a match of `len`.
inline uint seq_size(uint lit, uint len) {
    return 1u + ext_len(lit) + lit + 3u + ext_len(len - 4u);
}

// Writes a token and the literal-length extension; returns the bytes written.
inline uint put_token(__global uchar *o, uint lit, uint ml_code) {
    uint t = (min(lit, 15u) << 4) | min(ml_code, 15u);
    o[0] = (uchar)t;
    uint k = 1;
    if (lit >= 15u) {
        uint r = lit - 15u;
        while (r >= 255u) { o[k++] = 255; r -= 255u; }
        o[k++] = (uchar)r;
    }
    return k;
}

// Writes the 3-byte offset and the match-length extension; returns the bytes written.
inline uint put_match(__global uchar *o, uint off, uint len) {
    o[0] = (uchar)off;
    o[1] = (uchar)(off >> 8);
    o[2] = (uchar)(off >> 16);
    uint k = 3;
    uint ml = len - 4u;
    if (ml >= 15u) {
        uint r = ml - 15u;
        while (r >= 255u) { o[k++] = 255; r -= 255u; }
        o[k++] = (uchar)r;
    }
    return k;
}

// A last-occurrence entry: (position + 1) << TAG_BITS | tag, 0 = none. The tag is TAG_BITS bits of the
// 4 bytes' hash below the bucket's bits, so that lz_find skips the load of a source whose first 4 bytes
// cannot be its own (a tag differs, so do the bytes): fewer scattered loads, the same matches. The
// position sits above the tag, so atomic_max still keeps the last position. Frames are <= 16 MiB
// (MAX_FRAME), so position + 1 <= 2^24 and the entry fits 32 bits.
#define TAG_BITS 7u
#define TAG_MASK ((1u << TAG_BITS) - 1u)
inline uint tag_of(uint v) { return ((v * 2654435761u) >> (32 - LHASH_LOG - TAG_BITS)) & TAG_MASK; }
inline uint tab_entry(uint p, uint v) { return ((p + 1u) << TAG_BITS) | tag_of(v); }

// Where bucket h of a frame's last-occurrence tables starts in ltab: a frame's tables lie bucket-major
// (its segments' entries for one bucket side by side), so that lz_find finds the older segments'
// entries for one hash in one or two cache lines instead of one line each.
inline size_t tab_at(ulong base, uint n, uint h) {
    uint nsf = max((n + SUB - 1u) >> SUB_LOG, 1u);
    return (size_t)(base >> SUB_LOG) * LSIZE + (size_t)h * nsf;
}

// One work-item per 4 input bytes (the 4 positions' hashes from two aligned words).
__kernel void lz_build4(const __global uchar *in, const __global uint *sb_frame,
                       const __global ulong *fr_base, const __global uint *fr_len,
                       __global uint *ltab) {
    size_t g = get_global_id(0) * 4u;
    uint s = (uint)(g >> SUB_LOG);
    uint f = sb_frame[s];
    uint p0 = (uint)(g - fr_base[f]);
    uint lim = match_limit(fr_len[f]);
    // Only positions that can be a match source: q < p and p + MIN_MATCH <= lim.
    if (lim < MIN_MATCH || p0 + MIN_MATCH > lim) return;
    const __global uint *w = (const __global uint *)(in + g);
    uint w0 = w[0];
    uint w1 = p0 + 1u + MIN_MATCH <= lim ? w[1] : 0u;  // bytes of positions p0 + 1.. (in the frame)
    for (uint j = 0; j < 4u && p0 + j + MIN_MATCH <= lim; j++) {
        uint v = j == 0u ? w0 : (w0 >> (8u * j)) | (w1 << (32u - 8u * j));
        uint p = p0 + j;
        // Read before the atomic: runs of one byte hash to one bucket, and millions of atomics on one
        // address serialise. The table only moves one way (max), so a value read that already beats
        // p, stale or not, means the atomic would change nothing: the result is the same.
        __global uint *lt = &ltab[tab_at(fr_base[f], fr_len[f], hash_l(v)) + (s - (uint)(fr_base[f] >> SUB_LOG))];
        uint e = tab_entry(p, v);
        if (*lt < e) atomic_max(lt, e);
    }
}

// Work-group size of lz_build_l (the host's BUILD_WG).
#define BWG 256u

// The tables of lz_build4 with one work-group per segment: the segment's table is built in local
// memory (atomic_max there, order-independent, so deterministic), then written out whole, empty
// buckets too, so that the host clears no table and no global atomic is left. Of four neighbouring
// positions of one work-item that fall into one bucket only the last is offered: its entry is the
// larger (runs of one byte put every position into one bucket).
__kernel __attribute__((reqd_work_group_size(BWG, 1, 1)))
void lz_build_l(const __global uchar *in, const __global uint *sb_frame,
                const __global ulong *fr_base, const __global uint *fr_len, __global uint *ltab) {
    __local uint lt[LSIZE];
    uint s = get_group_id(0);
    uint lid = get_local_id(0);
    uint f = sb_frame[s];
    uint n = fr_len[f];
    uint k = s - (uint)(fr_base[f] >> SUB_LOG);  // segment index inside the frame
    uint lim = match_limit(n);
    for (uint i = lid; i < LSIZE; i += BWG) lt[i] = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    uint start = k << SUB_LOG;
    const __global uint *w = (const __global uint *)(in + fr_base[f] + start);
    for (uint i = lid; i < SUB / 4u; i += BWG) {
        uint p0 = start + 4u * i;
        // Only positions that can be a match source: p + MIN_MATCH <= lim (p0 grows with i).
        if (lim < MIN_MATCH || p0 + MIN_MATCH > lim) break;
        uint w0 = w[i];
        uint w1 = p0 + 1u + MIN_MATCH <= lim ? w[i + 1u] : 0u;  // bytes of positions p0 + 1.. (in the frame)
        uint h[4], e[4];
#pragma unroll
        for (uint j = 0; j < 4u; j++) {
            uint v = j == 0u ? w0 : (w0 >> (8u * j)) | (w1 << (32u - 8u * j));
            bool ok = p0 + j + MIN_MATCH <= lim;
            h[j] = ok ? hash_l(v) : LSIZE;  // LSIZE: no position
            e[j] = tab_entry(p0 + j, v);
        }
#pragma unroll
        for (uint j = 0; j < 4u; j++) {
            bool later = false;
#pragma unroll
            for (uint j2 = j + 1u; j2 < 4u; j2++) later = later || h[j2] == h[j];
            // Read before the atomic: a value that already beats e[j] means it would change nothing.
            if (h[j] < LSIZE && !later && lt[h[j]] < e[j]) atomic_max(&lt[h[j]], e[j]);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    uint nsf = max((n + SUB - 1u) >> SUB_LOG, 1u);
    __global uint *out = ltab + tab_at(fr_base[f], n, 0u) + k;  // bucket i at out[i * nsf]
    for (uint i = lid; i < LSIZE; i += BWG) out[(size_t)i * nsf] = lt[i];
}

#ifdef __ENDIAN_LITTLE__
// The aligned 8-byte word holding p, and in *sh the shift (bits) that lines p up in it.
inline const __global ulong *words(const __global uchar *p, uint *sh) {
    size_t a = (size_t)p;
    *sh = (uint)(a & 7u) * 8u;
    return (const __global ulong *)(a & ~(size_t)7);
}

// The 8 bytes that start sh / 8 bytes into w0, with w1 the word after it: (w0 >> sh) | (w1 << (64 - sh)),
// also for sh = 0.
inline ulong shifted(ulong w0, ulong w1, uint sh) { return (w0 >> sh) | ((w1 << 1) << (63u - sh)); }
#endif

// Length of the common prefix of a and b, at most max. Every caller's max ends at least LAST_LITS
// bytes before its frame's end, so the word after the last one compared is still the frame's.
inline uint common(const __global uchar *a, const __global uchar *b, uint max) {
    uint l = 0;
#ifdef __ENDIAN_LITTLE__
    // Aligned 8-byte words, each loaded once: an 8-byte step costs one load per side. (The buffers
    // and frames are 8-byte aligned, and a and b never lie before their frame's start.)
    uint sa, sb;
    const __global ulong *wa = words(a, &sa), *wb = words(b, &sb);
    ulong a0 = wa[0], b0 = wb[0];
    while (l + 8u <= max) {
        ulong a1 = wa[1], b1 = wb[1];
        ulong x = shifted(a0, a1, sa) ^ shifted(b0, b1, sb);
        if (x != 0UL) return l + (ctz64(x) >> 3);  // the first differing byte
        a0 = a1;
        b0 = b1;
        wa++;
        wb++;
        l += 8u;
    }
#endif
    while (l + 4u <= max) {
        uint x = read32(a + l) ^ read32(b + l);
        if (x != 0u) return l + (ctz32(x) >> 3);  // the first differing byte (little-endian words)
        l += 4u;
    }
    while (l < max && a[l] == b[l]) l++;
    return l;
}

// The 8 bytes at p as a little-endian word: on a little-endian device from the two aligned words that
// hold them (reads up to 7 bytes past p + 8; the buffers are 8-byte aligned).
inline ulong load8(const __global uchar *p) {
#ifdef __ENDIAN_LITTLE__
    uint sh;
    const __global ulong *w = words(p, &sh);
    return shifted(w[0], w[1], sh);
#else
    ulong v = 0UL;
    for (uint i = 0; i < 8u; i++) v |= (ulong)p[i] << (8u * i);
    return v;
#endif
}

// Length of the match of position p against an earlier q of the same frame (src), given the 8 bytes
// at each (pv, qv, from load8), at most maxlen (MIN_MATCH <= maxlen, ending LAST_LITS before the
// frame's end); 0 when their first 4 bytes differ. The same as `read32(q) == read32(p) ?
// 4 + common(q + 4, p + 4, maxlen - 4) : 0`, but the first 8 bytes cost no further load and no
// further round: most candidates end there.
inline uint match_at(const __global uchar *src, uint q, uint p, ulong pv, ulong qv, uint maxlen) {
    ulong x = pv ^ qv;
    if ((uint)x != 0u) return 0u;
    if (x != 0UL) return min(ctz64(x) >> 3, maxlen);  // the first differing byte, 4..7
    if (maxlen <= 8u) return maxlen;
    return 8u + common(src + q + 8, src + p + 8, maxlen - 8u);
}

// common() for long matches (the parse's extension of matches at the cap, up to the sub-block's end):
// the same result in fewer dependent rounds, at the price of more loads for short ones (run 56: lz_find
// and lz_link, whose compares end within 64 bytes, were 2-9 % slower with it, the parse 17 % faster).
inline uint common_long(const __global uchar *a, const __global uchar *b, uint max) {
    uint l = 0;
#ifdef __ENDIAN_LITTLE__
    // 32 bytes a round from aligned 8-byte words, each loaded once (five per side, the last one
    // kept for the next round), then the rest (under 32 bytes) in one round of up to four words
    // whose last one ends at max (it may overlap bytes already found equal). A GPU does not run ahead
    // of a load it must branch on, so the rounds, not the loads, are what a long match costs.
    // (The buffers and frames are 8-byte aligned, and a and b never lie before their frame's start.)
    uint sa, sb;
    const __global ulong *wa = words(a, &sa), *wb = words(b, &sb);
    ulong a0 = wa[0], b0 = wb[0];
    while (l + 32u <= max) {
        ulong a1 = wa[1], a2 = wa[2], a3 = wa[3], a4 = wa[4];
        ulong b1 = wb[1], b2 = wb[2], b3 = wb[3], b4 = wb[4];
        ulong x0 = shifted(a0, a1, sa) ^ shifted(b0, b1, sb);
        ulong x1 = shifted(a1, a2, sa) ^ shifted(b1, b2, sb);
        ulong x2 = shifted(a2, a3, sa) ^ shifted(b2, b3, sb);
        ulong x3 = shifted(a3, a4, sa) ^ shifted(b3, b4, sb);
        if (x0 != 0UL) return l + (ctz64(x0) >> 3);  // the first differing byte
        if (x1 != 0UL) return l + 8u + (ctz64(x1) >> 3);
        if (x2 != 0UL) return l + 16u + (ctz64(x2) >> 3);
        if (x3 != 0UL) return l + 24u + (ctz64(x3) >> 3);
        a0 = a4;
        b0 = b4;
        wa += 4;
        wb += 4;
        l += 32u;
    }
    if (max >= 8u) {
        ulong y0 = l + 8u <= max ? load8(a + l) ^ load8(b + l) : 0UL;
        ulong y1 = l + 16u <= max ? load8(a + l + 8u) ^ load8(b + l + 8u) : 0UL;
        ulong y2 = l + 24u <= max ? load8(a + l + 16u) ^ load8(b + l + 16u) : 0UL;
        ulong yt = load8(a + max - 8u) ^ load8(b + max - 8u);
        if (y0 != 0UL) return l + (ctz64(y0) >> 3);
        if (y1 != 0UL) return l + 8u + (ctz64(y1) >> 3);
        if (y2 != 0UL) return l + 16u + (ctz64(y2) >> 3);
        // Bytes before max - 8 are equal here, so the first difference in the last word is the first.
        return yt != 0UL ? max - 8u + (ctz64(yt) >> 3) : max;
    }
#else
    while (l + 4u <= max) {
        uint x = read32(a + l) ^ read32(b + l);
        if (x != 0u) return l + (ctz32(x) >> 3);  // the first differing byte (little-endian words)
        l += 4u;
    }
#endif
    while (l < max && a[l] == b[l]) l++;
    return l;
}

// ---- Far matches: anchors -------------------------------------------------------------------

#ifndef KEYLEN
#define KEYLEN 24u
#endif
#define NONE_SLOT 0xffffffffffffffffUL

// Hash of the 8 bytes at p; p is an anchor when its top ABITS bits are zero.
inline uint key8(uint v0, uint v1) {
    uint h = v0 * 2654435761u ^ (v1 * 2246822519u + 0x9e3779b9u);
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return h;
}

// Whether frame position p (p + 8 <= lim) is an anchor. Positions inside runs of period 1, 2 or 4
// are not: a run would otherwise put thousands of anchors under one hash, and near matches cover it.
inline bool anchor_at(const __global uchar *src, uint p, uint lim, uint *key) {
    if (p + KEYLEN > lim) return false;
    uint v0 = read32(src + p), v1 = read32(src + p + 4u);
    uint h = key8(v0, v1);
    if ((h >> (32 - ABITS)) != 0u) return false;
    for (uint d = 1; d <= 4u; d <<= 1) {
        if (p >= d && read32(src + p - d) == v0 && read32(src + p + 4u - d) == v1) return false;
    }
    // The sort key covers KEYLEN bytes: twins then share a longer prefix, so the latest twin is
    // much more often the right source than with the 8 bytes that make the anchor.
    for (uint o = 8u; o < KEYLEN; o += 8u) h = key8(h ^ read32(src + p + o), read32(src + p + o + 4u));
    *key = h;
    return true;
}

__kernel __attribute__((reqd_work_group_size(AWG, 1, 1)))
void lz_anchor(const __global uchar *in, const __global uint *sb_frame,
               const __global ulong *fr_base, const __global uint *fr_len,
               __global ulong *alist, __global uint *acnt) {
    __local ulong la[ACAP];
    __local uint lc[AWG];
    __local uint lcount;
    uint s = get_group_id(0);
    uint lid = get_local_id(0);
    uint f = sb_frame[s];
    uint n = fr_len[f];
    uint k = s - (uint)(fr_base[f] >> SUB_LOG);
    const __global uchar *src = in + fr_base[f];
    uint lim = match_limit(n);
    uint start = k << SUB_LOG, end = min(start + SUB, n);
    uint key;
    if (lid == 0) lcount = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    // Neighbouring work-items take neighbouring positions (coalesced loads) and each anchor a slot
    // from a counter: the slots' order depends on the scheduling, but the sort below puts the list in
    // (key, position) order, a total order, so the result does not.
    for (uint p = start + lid; p < end; p += AWG) {
        if (anchor_at(src, p, lim, &key)) {
            uint at = atomic_inc(&lcount);
            if (at < ACAP) la[at] = ((ulong)key << 32) | p;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    uint total = lcount;
    // More anchors than slots: the first ACAP by position are kept. Each work-item owns a contiguous
    // run of positions, so a prefix sum of the counts puts them in position order. (The barriers are
    // outside the branch: every work-item meets them, as PoCL needs.)
    bool over = total > ACAP;
    uint per = SUB / AWG;
    uint a = min(start + lid * per, end), b = min(a + per, end);
    uint cnt = 0;
    if (over) {
        for (uint p = a; p < b; p++) cnt += anchor_at(src, p, lim, &key) ? 1u : 0u;
    }
    lc[lid] = cnt;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint o = 1; o < AWG; o <<= 1) {  // inclusive scan (Hillis-Steele)
        uint v = lid >= o ? lc[lid - o] : 0u;
        barrier(CLK_LOCAL_MEM_FENCE);
        lc[lid] += v;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (over) {
        total = min(lc[AWG - 1], (uint)ACAP);
        uint at = lc[lid] - cnt;
        for (uint p = a; p < b && at < ACAP; p++) {
            if (anchor_at(src, p, lim, &key)) la[at++] = ((ulong)key << 32) | p;
        }
    }
    uint size = 1;
    while (size < total) size <<= 1;
    for (uint i = total + lid; i < size; i += AWG) la[i] = NONE_SLOT;
    barrier(CLK_LOCAL_MEM_FENCE);
    // Bitonic sort of la[0..size) ascending.
    for (uint kk = 2; kk <= size; kk <<= 1) {
        for (uint j = kk >> 1; j > 0; j >>= 1) {
            for (uint i = lid; i < size; i += AWG) {
                uint l = i ^ j;
                if (l > i) {
                    ulong x = la[i], y = la[l];
                    bool up = (i & kk) == 0u;
                    if ((x > y) == up) { la[i] = y; la[l] = x; }
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
    __global ulong *out = alist + (size_t)s * ACAP;
    for (uint i = lid; i < total; i += AWG) out[i] = la[i];
    if (lid == 0) acnt[s] = total;
}

// Number of entries of run[0..n) below x (n may be 0).
inline uint rank_in(const __global ulong *run, uint n, ulong x) {
    uint lo = 0, hi = n;
    while (lo < hi) {
        uint mid = (lo + hi) >> 1;
        if (run[mid] < x) lo = mid + 1u; else hi = mid;
    }
    return lo;
}

// Round r: the sorted runs of 2^r segments (stored from their first segment's slots on, count at
// that segment) are merged pairwise inside each frame into runs of 2^(r+1) segments.
__kernel void lz_merge(const __global uint *sb_frame, const __global ulong *fr_base,
                       const __global uint *fr_len, const __global ulong *src_list,
                       const __global uint *src_cnt, __global ulong *dst_list,
                       __global uint *dst_cnt, uint r, uint nslots) {
    uint g = get_global_id(0);
    if (g >= nslots) return;
    uint s = g / ACAP, i = g % ACAP;
    uint f = sb_frame[s];
    uint fs0 = (uint)(fr_base[f] >> SUB_LOG);
    uint nsf = (fr_len[f] + SUB - 1u) >> SUB_LOG;
    uint k = s - fs0;
    uint head = fs0 + ((k >> r) << r);
    uint idx = (s - head) * ACAP + i;
    uint j = k >> r;
    uint ohead = fs0 + ((k >> (r + 1u)) << (r + 1u));
    uint partner = (j & 1u) ? head - (1u << r) : head + (1u << r);
    bool has_partner = (j & 1u) || (partner - fs0) < nsf;
    uint pcnt = has_partner ? src_cnt[partner] : 0u;
    uint cnt = src_cnt[head];
    if (s == ohead && i == 0u) dst_cnt[ohead] = cnt + pcnt;
    if (idx >= cnt) return;
    ulong x = src_list[(size_t)head * ACAP + idx];
    uint o = idx + (has_partner ? rank_in(src_list + (size_t)partner * ACAP, pcnt, x) : 0u);
    dst_list[(size_t)ohead * ACAP + o] = x;
}

// After the last round each frame's anchors are one sorted list at its first segment. An anchor
// gets in far[] the offset of the best of its up to FAR_CANDS latest earlier twins (same hash, in
// the list just before it): the longest match (up to GOOD bytes), the nearest on a tie.
#define FAR_CANDS 16u
__kernel void lz_link(const __global uchar *in, const __global uint *sb_frame,
                      const __global ulong *fr_base, const __global uint *fr_len,
                      const __global ulong *list, const __global uint *cnt,
                      __global uint *far, uint nslots) {
    uint g = get_global_id(0);
    if (g >= nslots) return;
    uint s = g / ACAP, i = g % ACAP;
    uint f = sb_frame[s];
    uint fs0 = (uint)(fr_base[f] >> SUB_LOG);
    uint idx = (s - fs0) * ACAP + i;
    if (idx == 0u || idx >= cnt[fs0]) return;
    const __global ulong *l = list + (size_t)fs0 * ACAP;
    const __global uchar *src = in + fr_base[f];
    ulong x = l[idx];
    uint p = (uint)x;
    uint maxlen = min(match_limit(fr_len[f]) - p, (uint)GOOD);
    uint blen = 0, boff = 0;
    for (uint c = 1; c <= FAR_CANDS && c <= idx; c++) {
        ulong y = l[idx - c];
        if ((x >> 32) != (y >> 32)) break;
        uint q = (uint)y;
        uint len = common(src + q, src + p, maxlen);
        if (len > blen) { blen = len; boff = p - q; }
        if (len == maxlen) break;
    }
    if (blen >= 8u) far[fr_base[f] + p] = boff;
}

// ---- Match finding ------------------------------------------------------------------------------

// How far (in positions) a far offset is carried to its neighbours in lz_find.
#define FAR_REACH 32u

#if WG != 64
#error "lz_find keeps one bit per work-item of an epoch in a 64-bit mask: WG must be 64"
#endif

// The local table's slots. With segments of at most 32 KiB (SUB_LOG <= 15) a slot is 16 bits: the
// position relative to the previous segment's start, + 1 (0 = empty), two slots per word: half the
// local memory, so twice the work-groups fit on a multiprocessor. The segment's last position, the
// one value that would not fit, is never stored: it is inserted in the last epoch, which no search
// follows. A slot's value moves one way (max) whatever the order of the updates, as with atomic_max.
#if SUB_LOG <= 15
#define TWORDS ((LSIZE * CANDS + 1u) / 2u)
inline uint slot_get(const __local uint *t, uint i) {
    uint w = t[i >> 1];
    return (i & 1u) ? w >> 16 : w & 0xffffu;
}
inline void slot_max(volatile __local uint *t, uint i, uint v) {
    volatile __local uint *w = t + (i >> 1);
    uint sh = (i & 1u) * 16u;
    uint old = *w;
    while (((old >> sh) & 0xffffu) < v) {
        uint prev = atomic_cmpxchg(w, old, (old & ~(0xffffu << sh)) | (v << sh));
        if (prev == old) break;
        old = prev;
    }
}
#else
#define TWORDS (LSIZE * CANDS)
inline uint slot_get(const __local uint *t, uint i) { return t[i]; }
inline void slot_max(volatile __local uint *t, uint i, uint v) { atomic_max(t + i, v); }
#endif

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void lz_find(const __global uchar *in, const __global uint *sb_frame,
             const __global ulong *fr_base, const __global uint *fr_len,
             const __global uint *ltab, const __global uint *far, __global uint *matches) {
    // Top-K slots per bucket, positions + 1 (0 = empty). Slot e % CANDS holds the latest position of
    // the bucket among epochs congruent to e; atomic_max keeps that independent of scheduling.
    __local uint tab[TWORDS];
    // Far offsets of an epoch's positions (0 = none), and which of them are set: one bit per
    // work-item (atomic_or: order-independent). Two of each, used in turn: epoch e reads set e % 2
    // while, after its search, the next epoch's set is written and set e % 2 cleared, so that an epoch
    // needs two barriers (search | insert and next far offsets), not three.
    __local uint lfar[2][WG];
    __local uint lmask[2][2];
    uint s = get_group_id(0);
    uint lid = get_local_id(0);
    uint f = sb_frame[s];
    uint n = fr_len[f];
    uint k = s - (uint)(fr_base[f] >> SUB_LOG);  // segment index inside the frame
    const __global uchar *src = in + fr_base[f];
    const __global uint *fr_far = far + fr_base[f];
    __global uint *mt = matches + fr_base[f];
    uint start = k << SUB_LOG;
    uint lim = match_limit(n);
    // Slot values are positions + 1 - tbase (tbase = 0 with 32-bit slots).
#if SUB_LOG <= 15
    int tbase = (int)start - (int)SUB;
#else
    int tbase = 0;
#endif

    // Seed slot 0 with the previous segment's latest positions: matches reach back across the edge.
    for (uint i = lid; i < TWORDS; i += WG) tab[i] = 0u;
    if (lid < 4u) lmask[lid >> 1][lid & 1u] = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    uint end = min(start + SUB, n);
    uint epochs = end > start ? (end - start + WG - 1) / WG : 0u;
    {  // epoch 0's far offsets
        uint p = start + lid;
        uint fv = p < end ? fr_far[p] : 0u;
        lfar[0][lid] = fv;
        if (fv != 0u) atomic_or(&lmask[0][lid >> 5], 1u << (lid & 31u));
    }
    if (k > 0) {
        for (uint i = lid; i < LSIZE; i += WG) {
            uint v = ltab[tab_at(fr_base[f], n, i) + k - 1u] >> TAG_BITS;
#if SUB_LOG <= 15 && CANDS % 2 == 0
            // Slot 0 of bucket i is the low half of a word no other bucket shares.
            if (v != 0u) tab[(i * CANDS) >> 1] = (uint)((int)v - tbase);
#else
            if (v != 0u) slot_max(tab, i * CANDS, (uint)((int)v - tbase));
#endif
        }
    }
    // The last far offset of earlier epochs (the same in every work-item).
    uint carry = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);

    for (uint e = 0; e < epochs; e++) {
        uint p = start + e * WG + lid;
        uint fv_next = p + WG < end ? fr_far[p + WG] : 0u;  // the next epoch's, loaded early
        __local uint *m = lmask[e & 1u];
        const __local uint *lf = lfar[e & 1u];
        ulong mask = (ulong)m[0] | ((ulong)m[1] << 32);
        // Nearest anchor offsets at or before p (within FAR_REACH, else the carry from earlier
        // epochs) and after p (within FAR_REACH).
        uint fprev = carry, fnext = 0;
        ulong upto = mask & (0xffffffffffffffffUL >> (63u - lid));
        if (upto != 0UL) {
            uint j = 63u - (uint)clz(upto);
            if (lid - j < FAR_REACH) fprev = lf[j];
        }
        ulong after = lid < 63u ? mask >> (lid + 1u) : 0UL;
        if (after != 0UL) {
            uint t = ctz64(after);  // j = lid + 1 + t
            if (t + 1u < FAR_REACH) fnext = lf[lid + 1u + t];
        }
        if (mask != 0UL) carry = lf[63u - (uint)clz(mask)];
        bool can = lim >= MIN_MATCH && p + MIN_MATCH <= lim;
        uint hl = 0, best = 0;
        if (can) {
            ulong pv = load8(src + p);
            uint v = (uint)pv;
            hl = hash_l(v);
            uint tg = tag_of(v);
            uint maxlen = min(lim - p, (uint)GOOD);
            size_t tb = tab_at(fr_base[f], n, hl);
            // The candidates' sources (NO_POS: none): the table's slots, then the far offsets before and
            // after p. Their first 8 bytes are loaded at once (independent loads: one round of latency,
            // not one per candidate), then the candidates are asked in order, as one at a time would.
            uint cq[CANDS + 2u];
            ulong cv[CANDS + 2u];
#pragma unroll
            for (uint c = 0; c < CANDS + 2u; c++) {
                uint q = NO_POS;
                if (c < CANDS) {
                    uint q1 = slot_get(tab, hl * CANDS + c);
                    if (q1 != 0u) q = (uint)((int)q1 + tbase) - 1u;
                } else {
                    uint d = c == CANDS ? fprev : fnext;
                    if (d != 0u && d <= p && (c == CANDS || d != fprev)) q = p - d;
                }
                cq[c] = q;
                cv[c] = q != NO_POS ? load8(src + q) : 0UL;
            }
            uint blen = 0, boff = 0;
#pragma unroll
            for (uint c = 0; c < CANDS + 2u; c++) {
                uint q = cq[c];
                // A far source at boff: a table slot held it already (same length, no change).
                if (q == NO_POS || blen >= maxlen || (c >= CANDS && blen > 0u && p - q == boff)) continue;
                uint len = match_at(src, q, p, pv, cv[c], maxlen);
                uint off = p - q;
                if (len > blen || (len == blen && off < boff)) { blen = len; boff = off; }
            }
            // The older segments k - 2 - b: their entries loaded at once (independent loads), then
            // only those whose tag is v's asked, in order of b (the others would be skipped anyway).
            if (BACK > 0u && k >= 2u && blen < maxlen && blen < BACK_BELOW) {
                uint nb = min((uint)BACK, k - 1u);
                uint hits = 0u;
#pragma unroll
                for (uint b = 0; b < BACK; b++) {
                    if (b < nb) {
                        uint e1 = ltab[tb + k - 2u - b];
                        if (e1 != 0u && (e1 & TAG_MASK) == tg) hits |= 1u << b;
                    }
                }
                while (hits != 0u && blen < maxlen && blen < BACK_BELOW) {
                    uint b = ctz32(hits);
                    hits &= hits - 1u;
                    uint q = (ltab[tb + k - 2u - b] >> TAG_BITS) - 1u;
                    uint len = match_at(src, q, p, pv, load8(src + q), maxlen);
                    uint off = p - q;
                    if (len > blen || (len == blen && off < boff)) { blen = len; boff = off; }
                }
            }
            if (blen >= MIN_MATCH) best = (blen << 24) | boff;
        }
        if (p < end) mt[p] = best;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (can && e + 1u < epochs) slot_max(tab, hl * CANDS + e % CANDS, (uint)((int)(p + 1u) - tbase));
        if (lid < 2u) m[lid] = 0u;  // read last in this epoch's search
        lfar[(e + 1u) & 1u][lid] = fv_next;  // read last in epoch e - 1
        if (fv_next != 0u) atomic_or(&lmask[(e + 1u) & 1u][lid >> 5], 1u << (lid & 31u));
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// Writes one sequence: token, the `lit` literals at lits, offset and match length; returns its bytes.
inline uint put_seq(__global uchar *out, const __global uchar *lits, uint lit, uint off, uint len) {
    uint o = put_token(out, lit, len - 4u);
    uint i = 0;
    for (; i + 4u <= lit; i += 4u) {  // four literals per read
        uint w = read32(lits + i);
        out[o + i] = (uchar)w;
        out[o + i + 1u] = (uchar)(w >> 8);
        out[o + i + 2u] = (uchar)(w >> 16);
        out[o + i + 3u] = (uchar)(w >> 24);
    }
    for (; i < lit; i++) out[o + i] = lits[i];
    o += lit;
    return o + put_match(out + o, off, len);
}

// One bit per stored match of w (bit i: w's i-th), set where it is a match (length >= MIN_MATCH).
inline uint match_bits(uint4 w) {
    return (uint)(w.x >> 24 >= MIN_MATCH) | ((uint)(w.y >> 24 >= MIN_MATCH) << 1) |
           ((uint)(w.z >> 24 >= MIN_MATCH) << 2) | ((uint)(w.w >> 24 >= MIN_MATCH) << 3);
}

__kernel void lz_parse(const __global uchar *in, const __global uint *sb_frame,
                       const __global ulong *fr_base, const __global uint *fr_len,
                       const __global uint *fr_first_sb, const __global uint *fr_nsb,
                       const __global uint *matches, __global uchar *scratch, __global uint *info,
                       uint nsub) {
    uint s = get_global_id(0);
    if (s >= nsub) return;
    uint f = sb_frame[s >> (SUB_LOG - PSUB_LOG)];
    uint k = s - fr_first_sb[f];
    if (k >= fr_nsb[f]) return;  // padding after the frame's last sub-block
    uint n = fr_len[f];
    uint start = k << PSUB_LOG;
    const __global uchar *src = in + fr_base[f];
    const __global uint *mt = matches + fr_base[f];
    __global uchar *out = scratch + (size_t)s * SCRATCH;
    // Matches of this sub-block start and end inside [start, end).
    uint end = min(start + PSUB, match_limit(n));
    uint o = 0, nseq = 0, anchor = start, p = start;
    uint p0 = 0, len0 = 0, off0 = 0;
    while (end >= MIN_MATCH && p + MIN_MATCH <= end) {
        uint m = mt[p];
        uint m1 = mt[p + 1u];  // for the lazy step, loaded with m (p + 1 < end here)
        uint len = min(m >> 24, end - p);
        uint off = m & 0xffffffu;
        if (len < MIN_MATCH) {
            // A literal (end - p >= MIN_MATCH here, so only the stored length decides). Runs of them
            // are skipped sixteen stored matches a round (four 16-byte loads in flight at once, from an
            // aligned position: mt is 16-byte aligned, frames start at multiples of SUB) while sixteen
            // more positions fit, then four per load; the positions the loop would stop at are the same.
            p++;
            bool hit = false;
            while (!hit && p + 16u + MIN_MATCH <= end) {
                uint a = p & ~3u;
                const __global uint4 *w4 = (const __global uint4 *)(mt + a);
                uint4 w0 = w4[0], w1 = w4[1], w2 = w4[2], w3 = w4[3];
                uint bits = match_bits(w0) | (match_bits(w1) << 4) | (match_bits(w2) << 8) | (match_bits(w3) << 12);
                bits &= 0xffffu << (p - a);  // positions a .. p - 1 are behind
                hit = bits != 0u;
                p = hit ? a + ctz32(bits) : a + 16u;
            }
            while (!hit && (p & 3u) == 0u && p + 4u + MIN_MATCH <= end) {
                uint4 w = *(const __global uint4 *)(mt + p);
                if (max(max(w.x, w.y), max(w.z, w.w)) >> 24 >= MIN_MATCH) break;
                p += 4u;
            }
            continue;
        }
        if (len == GOOD) {
            len += common_long(src + p + len, src + p + len - off, end - p - len);
        } else if (p + 1u + MIN_MATCH <= end && min(m1 >> 24, end - p - 1u) > len) {
            p++;  // lazy: the next position has a longer match
            continue;
        }
        uint lit = p - anchor;
        if (nseq == 0) {
            p0 = p; len0 = len; off0 = off;
        } else {
            if (o + seq_size(lit, len) > SCRATCH) break;  // cannot happen with MIN_MATCH >= 5
            o += put_seq(out + o, src + anchor, lit, off, len);
        }
        nseq++;
        p += len;
        anchor = p;
    }
    __global uint *inf = info + (size_t)s * INFO;
    inf[I_NSEQ] = nseq;
    inf[I_P0] = p0;
    inf[I_LEN0] = len0;
    inf[I_OFF0] = off0;
    inf[I_TAIL] = anchor;
    inf[I_SLEN] = o;
}

// Literal runs are chained within a "chain block" of 2^gl parse sub-blocks: the LZ_EXT3_SB sub-block
// (format v2, gl = sb_log - PSUB_LOG) or the whole frame (plain LZ_EXT3, gl = 24). Each chain block
// ends with a literal-only sequence holding its pending literals: in LZ_EXT3_SB only when there are
// some (every sub-block then holds at least one sequence), in plain LZ_EXT3 always (the frame's last).
// Per parse sub-block results of lz_plan: sb_plan[s * PLAN + ...]
// ---- The parse with a warp per sub-block (PLANES = 32; the default, CLC_GPU_PARSE_LANES=1: lz_parse) --
//
// lz_parse's greedy parse is a chain: from a position p the next one, and whether a sequence ends
// there, depend on p alone (pstep). So the sub-block is cut into 32 slices of PSUB / 32 positions,
// and lane l first walks its slice from its first position (a guess: the true chain may enter the
// slice elsewhere), marking the positions it visits. Then one lane follows the true chain from the
// sub-block's start, jumping over a slice as soon as the chain meets a marked position there (from
// there on the chain is the guessed one), and stepping where it does not. Then every lane walks its
// slice again from the true entry: once to count its sequences' bytes, once, after a prefix sum, to
// write them. The sequences, the first one kept apart and the tail are lz_parse's, byte for byte.
#ifndef PLANES
#define PLANES 32
#endif
#define PL_SLICE (PSUB / PLANES)
#define PL_VW ((PL_SLICE + 31u) / 32u)
#define PL_SUBS 2u  // sub-blocks per work-group of 64

// One step of the chain at p (p + MIN_MATCH <= end): returns the next position; *len is the
// sequence's match length when one ends at p (its offset in *off), else 0.
inline uint pstep(const __global uchar *src, const __global uint *mt, uint p, uint end, uint *len,
                  uint *off) {
    uint m = mt[p];
    uint l = min(m >> 24, end - p);
    *len = 0u;
    if (l < MIN_MATCH) return p + 1u;  // a literal
    uint o = m & 0xffffffu;
    if (l == GOOD) {
        l += common_long(src + p + l, src + p + l - o, end - p - l);
    } else if (p + 1u + MIN_MATCH <= end && min(mt[p + 1u] >> 24, end - p - 1u) > l) {
        return p + 1u;  // lazy: the next position has a longer match
    }
    *len = l;
    *off = o;
    return p + l;
}

__kernel __attribute__((reqd_work_group_size(PLANES * PL_SUBS, 1, 1)))
void lz_parse_w(const __global uchar *in, const __global uint *sb_frame,
                const __global ulong *fr_base, const __global uint *fr_len,
                const __global uint *fr_first_sb, const __global uint *fr_nsb,
                const __global uint *matches, __global uchar *scratch, __global uint *info,
                uint nsub) {
    __local uint vis[PL_SUBS * PLANES * PL_VW];  // positions each lane's guessed walk visited
    __local uint xit[PL_SUBS * PLANES];   // where the guessed walk left the slice
    __local uint lend[PL_SUBS * PLANES];  // its last sequence: position (NO_POS: none) ...
    __local uint lanc[PL_SUBS * PLANES];  // ... and end
    __local uint ent[PL_SUBS * PLANES];   // the true chain's first position in the slice (NO_POS: none)
    __local uint ein[PL_SUBS * PLANES];   // the literal run's start there
    __local uint cnt[PL_SUBS * PLANES];   // sequences of the slice
    __local uint sz[PL_SUBS * PLANES];    // their bytes, then their output offset
    __local uint tail[PL_SUBS];
    uint lid = get_local_id(0);
    uint lane = lid % PLANES, sub = lid / PLANES, me = sub * PLANES + lane;
    uint s = get_group_id(0) * PL_SUBS + sub;
    bool live = s < nsub;
    uint f = 0, k = 0;
    if (live) {
        f = sb_frame[s >> (SUB_LOG - PSUB_LOG)];
        k = s - fr_first_sb[f];
        live = k < fr_nsb[f];  // not the padding after the frame's last sub-block
    }
    uint n = live ? fr_len[f] : 0u;
    uint start = k << PSUB_LOG;
    const __global uchar *src = in + (live ? fr_base[f] : 0UL);
    const __global uint *mt = matches + (live ? fr_base[f] : 0UL);
    uint end = live ? min(start + PSUB, match_limit(n)) : 0u;
    uint s0 = start + lane * PL_SLICE, s1 = s0 + PL_SLICE;

    // 1. The guessed walk of each slice.
    for (uint i = 0; i < PL_VW; i++) vis[me * PL_VW + i] = 0u;
    uint p = s0, lp = NO_POS, la = 0u;
    while (p < s1 && p + MIN_MATCH <= end) {
        uint o = p - s0;
        vis[me * PL_VW + o / 32u] |= 1u << (o % 32u);
        uint len, off;
        uint q = pstep(src, mt, p, end, &len, &off);
        if (len != 0u) { lp = p; la = q; }
        p = q;
    }
    xit[me] = p;
    lend[me] = lp;
    lanc[me] = la;
    ent[me] = NO_POS;
    barrier(CLK_LOCAL_MEM_FENCE);

    // 2. The true chain, by one lane per sub-block.
    if (lane == 0u) {
        uint b = sub * PLANES;
        uint t = start, anchor = start;
        while (t + MIN_MATCH <= end) {
            uint j = (t - start) / PL_SLICE, o = t - start - j * PL_SLICE;
            if (ent[b + j] == NO_POS) { ent[b + j] = t; ein[b + j] = anchor; }
            if ((vis[(b + j) * PL_VW + o / 32u] >> (o % 32u)) & 1u) {
                // The guessed walk from here on: its last sequence is on the chain if it lies at or after t.
                if (lend[b + j] != NO_POS && lend[b + j] >= t) anchor = lanc[b + j];
                t = xit[b + j];
            } else {
                uint len, off;
                uint q = pstep(src, mt, t, end, &len, &off);
                if (len != 0u) anchor = q;
                t = q;
            }
        }
        tail[sub] = anchor;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // 3. Each slice's sequences from the true entry: count their bytes.
    uint e0 = ent[me], a0 = ein[me];
    uint c = 0, bytes = 0;
    if (e0 != NO_POS) {
        uint anchor = a0;
        for (p = e0; p < s1 && p + MIN_MATCH <= end;) {
            uint len, off;
            uint q = pstep(src, mt, p, end, &len, &off);
            if (len != 0u) {
                c++;
                bytes += seq_size(p - anchor, len);
                anchor = q;
            }
            p = q;
        }
    }
    cnt[me] = c;
    sz[me] = bytes;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane == 0u) {  // offsets: the sub-block's first sequence is kept apart, not in scratch
        uint b = sub * PLANES, o = 0;
        for (uint j = 0; j < PLANES; j++) {
            uint bj = sz[b + j];
            sz[b + j] = o;
            o += bj;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    // 4. Write them (the first of the sub-block goes to info instead).
    uint before = 0;  // sequences of the slices before this one
    for (uint j = 0; j < lane; j++) before += cnt[sub * PLANES + j];
    uint total = before;
    for (uint j = lane; j < PLANES; j++) total += cnt[sub * PLANES + j];
    // Bytes of the sub-block's first sequence, which the offsets above counted but scratch does not hold.
    uint firstsz = 0, p0 = 0, len0 = 0, off0 = 0;
    {
        uint j = 0;
        while (j < PLANES && cnt[sub * PLANES + j] == 0u) j++;
        if (j < PLANES) {
            uint anchor = ein[sub * PLANES + j];
            for (uint t = ent[sub * PLANES + j];;) {
                uint len, off;
                uint q = pstep(src, mt, t, end, &len, &off);
                if (len != 0u) {
                    firstsz = seq_size(t - anchor, len);
                    p0 = t; len0 = len; off0 = off;
                    break;
                }
                t = q;
            }
        }
    }
    __global uchar *out = scratch + (size_t)s * SCRATCH;
    if (e0 != NO_POS && c != 0u) {
        uint o = sz[me] - (before > 0u ? firstsz : 0u);
        uint anchor = a0;
        bool skip = before == 0u;  // this slice holds the sub-block's first sequence
        for (p = e0; p < s1 && p + MIN_MATCH <= end;) {
            uint len, off;
            uint q = pstep(src, mt, p, end, &len, &off);
            if (len != 0u) {
                uint lit = p - anchor;
                if (skip) {
                    skip = false;
                } else if (o + seq_size(lit, len) <= SCRATCH) {  // always (MIN_MATCH >= 5)
                    o += put_seq(out + o, src + anchor, lit, off, len);
                }
                anchor = q;
            }
            p = q;
        }
    }
    if (live && lane == PLANES - 1u) {
        uint o = sz[me] + bytes - (total > 0u ? firstsz : 0u);
        __global uint *inf = info + (size_t)s * INFO;
        inf[I_NSEQ] = total;
        inf[I_P0] = p0;
        inf[I_LEN0] = len0;
        inf[I_OFF0] = off0;
        inf[I_TAIL] = tail[sub];
        inf[I_SLEN] = o;
    }
}

#define PLAN 8
#define P_HDR 0   // output position of the first sequence's token
#define P_CARRY 1 // frame position where the incoming literal run starts
#define P_DST 2   // output position of byte P_CARRY
#define T_HDR 3   // last parse sub-block of a chain block only: output position of its final token,
#define T_DST 4   //   of that sequence's first literal,
#define T_LIT 5   //   and its literal count (0: no final sequence in LZ_EXT3_SB)
// Per frame results: fr_plan[f * 4 + ...]
#define F_SIZE 0  // encoded size of the sequences, or OVERFLOW

// Whether chain block j's final literal-only sequence is written (lit literals; `last`: the frame's).
inline bool final_seq(uint lit, bool last, uint sb) { return lit > 0u || (last && sb == 0u); }

// One work-group of PWG per frame; work-item i owns a contiguous run ("chunk") of sub-blocks. The
// serial recurrence (a sub-block's first literal run starts at the tail of the last earlier sub-block
// with a sequence in its chain block, else at the chain block's start) becomes three scans over the
// chunks: the last non-empty sub-block before each chunk (its tail is the chunk's incoming carry), the
// exclusive sum of chunk sizes (the chunk's output position) and the first non-empty sub-block after
// each chunk (whose literal destination the empty sub-blocks in between share). The results equal
// those of the plain serial walk.
#define NONE 0xffffffffu
__kernel __attribute__((reqd_work_group_size(PWG, 1, 1)))
void lz_plan(const __global uint *fr_len, const __global uint *fr_first_sb,
             const __global uint *fr_nsb, const __global uint *fr_cap,
             const __global uint *info, __global uint *sb_plan, __global uint *fr_plan,
             uint gl, uint sb) {
    __local uint l_last[PWG];   // last non-empty sub-block of each chunk + 1, 0 = none
    __local uint l_first[PWG];  // first non-empty sub-block of each chunk, NONE = none
    __local uint l_size[PWG];   // output bytes of each chunk
    uint f = get_group_id(0);
    uint lid = get_local_id(0);
    uint first = fr_first_sb[f], nsb = fr_nsb[f];
    uint n = fr_len[f];
    uint per = (nsb + PWG - 1u) / PWG;
    uint a = first + min(lid * per, nsb), b = first + min(lid * per + per, nsb);

    uint lastne = 0, firstne = NONE;
    for (uint s = a; s < b; s++) {
        if (info[(size_t)s * INFO + I_NSEQ] != 0u) {
            if (firstne == NONE) firstne = s;
            lastne = s + 1u;
        }
    }
    l_last[lid] = lastne;
    l_first[lid] = firstne;
    barrier(CLK_LOCAL_MEM_FENCE);

    // The carry just before sub-block a (before a chain block starting at a resets it).
    uint before = 0;
    for (uint j = 0; j < lid; j++) before = max(before, l_last[j]);
    uint ka = a - first;
    uint carry_in = 0;
    if (ka > 0u) {
        uint cb = (ka - 1u) >> gl;  // chain block of sub-block a - 1
        if (before > 0u && ((before - 1u - first) >> gl) == cb)
            carry_in = info[(size_t)(before - 1u) * INFO + I_TAIL];
        else
            carry_in = (cb << gl) << PSUB_LOG;
    }
    uint size = 0, carry = carry_in;
    for (uint s = a; s < b; s++) {
        uint k = s - first;
        if (k > 0u && (k & ((1u << gl) - 1u)) == 0u) {  // close the previous chain block
            uint lit = (k << PSUB_LOG) - carry;
            if (final_seq(lit, false, sb)) size += 1u + ext_len(lit) + lit;
            carry = k << PSUB_LOG;
        }
        const __global uint *inf = info + (size_t)s * INFO;
        if (inf[I_NSEQ] == 0u) continue;
        size += seq_size(inf[I_P0] - carry, inf[I_LEN0]) + inf[I_SLEN];
        carry = inf[I_TAIL];
    }
    l_size[lid] = size;
    barrier(CLK_LOCAL_MEM_FENCE);

    uint pos = 0;
    for (uint j = 0; j < lid; j++) pos += l_size[j];
    carry = carry_in;
    for (uint s = a; s < b; s++) {
        uint k = s - first;
        if (k > 0u && (k & ((1u << gl) - 1u)) == 0u) {
            uint lit = (k << PSUB_LOG) - carry;
            __global uint *t = sb_plan + (size_t)(s - 1u) * PLAN;
            t[T_HDR] = pos;
            t[T_DST] = pos + 1u + ext_len(lit);
            t[T_LIT] = lit;
            if (final_seq(lit, false, sb)) pos += 1u + ext_len(lit) + lit;
            carry = k << PSUB_LOG;
        }
        const __global uint *inf = info + (size_t)s * INFO;
        __global uint *pl = sb_plan + (size_t)s * PLAN;
        pl[P_CARRY] = carry;
        pl[P_HDR] = pos;
        if (inf[I_NSEQ] == 0u) continue;
        uint lit = inf[I_P0] - carry;
        pl[P_DST] = pos + 1u + ext_len(lit);
        pos += seq_size(lit, inf[I_LEN0]) + inf[I_SLEN];
        carry = inf[I_TAIL];
    }
    if (lid == PWG - 1u) {  // the last chunk ends with the frame's last chain block: close it
        uint lit = n - carry;
        __global uint *t = sb_plan + (size_t)(first + nsb - 1u) * PLAN;
        t[T_HDR] = pos;
        t[T_DST] = pos + 1u + ext_len(lit);
        t[T_LIT] = lit;
        if (final_seq(lit, true, sb)) pos += 1u + ext_len(lit) + lit;
        fr_plan[f * 4 + F_SIZE] = pos <= fr_cap[f] ? pos : OVERFLOW;
    }
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);

    // Empty sub-blocks copy their bytes into the run that the next non-empty sub-block of their chain
    // block opens, or else into the chain block's final sequence.
    if (a == b) return;
    uint kl = b - 1u - first;
    uint cb = kl >> gl;
    uint cb_last = first + min((cb + 1u) << gl, nsb) - 1u;  // last sub-block of that chain block
    uint next = NONE;
    for (uint j = lid + 1u; j < PWG && next == NONE; j++) next = l_first[j];
    uint nd = next != NONE && ((next - first) >> gl) == cb ? sb_plan[(size_t)next * PLAN + P_DST]
                                                           : sb_plan[(size_t)cb_last * PLAN + T_DST];
    for (uint s = b; s > a; s--) {
        __global uint *pl = sb_plan + (size_t)(s - 1u) * PLAN;
        uint k = s - 1u - first;
        if (k + 1u == nsb || ((k + 1u) & ((1u << gl) - 1u)) == 0u) nd = pl[T_DST];
        if (info[(size_t)(s - 1u) * INFO + I_NSEQ] != 0u) nd = pl[P_DST];
        else pl[P_DST] = nd;
    }
}

// One work-group per parse sub-block. The sequence area of frame f starts at outbuf + fr_out[f]; in
// LZ_EXT3_SB (sb = 1) the first parse sub-block of each sub-block writes its start[] entry into the
// table just before it (the host writes sb_log, count and table_check).
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void lz_emit(const __global uchar *in, const __global uint *sb_frame,
             const __global ulong *fr_base, const __global uint *fr_len,
             const __global uint *fr_first_sb, const __global uint *fr_nsb,
             const __global ulong *fr_out, const __global uchar *scratch,
             const __global uint *info, const __global uint *sb_plan,
             const __global uint *fr_plan, __global uchar *outbuf, uint gl, uint sb) {
    uint s = get_group_id(0);
    uint lid = get_local_id(0);
    uint f = sb_frame[s >> (SUB_LOG - PSUB_LOG)];
    uint k = s - fr_first_sb[f];
    uint nsb = fr_nsb[f];
    if (k >= nsb) return;  // padding after the frame's last sub-block
    if (fr_plan[f * 4 + F_SIZE] == OVERFLOW) return;  // the host stores this frame as literals
    uint n = fr_len[f];
    uint start = k << PSUB_LOG;
    uint bend = min(start + PSUB, n);  // literal bytes of [start, bend) are copied by this group
    bool last_sb = k + 1u == nsb;
    bool cb_end = last_sb || ((k + 1u) & ((1u << gl) - 1u)) == 0u;  // last of its chain block
    const __global uchar *src = in + fr_base[f];
    __global uchar *out = outbuf + fr_out[f];
    const __global uint *inf = info + (size_t)s * INFO;
    const __global uint *pl = sb_plan + (size_t)s * PLAN;
    uint nseq = inf[I_NSEQ];
    uint carry = pl[P_CARRY];
    uint dst = pl[P_DST];

    if (sb != 0u && lid == 0 && (k & ((1u << gl) - 1u)) == 0u && start < n) {
        // start[j] of sub-block j = k >> gl: the table's entries sit before the sequence area.
        uint count = (n + (1u << (gl + PSUB_LOG)) - 1u) >> (gl + PSUB_LOG);
        __global uchar *e = out - 4u - 4u * count + 4u * (k >> gl);
        uint v = pl[P_HDR];
        e[0] = (uchar)v; e[1] = (uchar)(v >> 8); e[2] = (uchar)(v >> 16); e[3] = (uchar)(v >> 24);
    }

    // The incoming literal run, for the part lying in this sub-block.
    uint run_end = nseq > 0 ? inf[I_P0] : bend;
    for (uint x = start + lid; x < run_end; x += WG) out[dst + (x - carry)] = src[x];

    if (nseq > 0) {
        uint p0 = inf[I_P0], len0 = inf[I_LEN0], tail = inf[I_TAIL], slen = inf[I_SLEN];
        uint hdr = pl[P_HDR];
        uint mpos = dst + (p0 - carry);  // where the offset of the first sequence goes
        uint mlen = 3u + ext_len(len0 - 4u);
        if (lid == 0) {
            put_token(out + hdr, p0 - carry, len0 - 4u);
            put_match(out + mpos, inf[I_OFF0], len0);
        }
        const __global uchar *sc = scratch + (size_t)s * SCRATCH;
        for (uint i = lid; i < slen; i += WG) out[mpos + mlen + i] = sc[i];
        // Trailing literals start the next run: the next sub-block's, or this chain block's final one.
        uint ndst = cb_end ? pl[T_DST] : sb_plan[(size_t)(s + 1u) * PLAN + P_DST];
        for (uint x = tail + lid; x < bend; x += WG) out[ndst + (x - tail)] = src[x];
    }
    if (cb_end && lid == 0 && final_seq(pl[T_LIT], last_sb, sb)) put_token(out + pl[T_HDR], pl[T_LIT], 0u);
}
