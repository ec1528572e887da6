// LZ_EXT3_SB decoder (codec 3, docs/FORMAT.md 2.2): a walk, then pointer jumping. docs/GPU.md has the
// design and the numbers.
//
// `lz3sb_walk` (one launch): one work-group of W work-items per segment, every segment of every frame
// of the batch at once (a segment: a sub-block, or the part of one between two of its mid-points, format
// 6; a segment that ends before its sub-block's input does must end with a match part, which makes a
// mid-point that is not the start of a sequence of the serial parse fail); W = 128 on GPUs (four warps), 1 on CPU devices. A producer and consumers:
// work-item 0 parses window x + 1 (up to WIN = 32 sequences, checking every length and offset as the CPU
// decoder does) into one half of a double-buffered local queue while the other warps (work-items 32..W-1)
// place window x from the other half, one barrier per window; the first warp's other lanes only keep the
// barriers. (Inside one warp the parse and the placement ran one after the other: run 34; as separate
// warps they overlap: run 35; with three placing warps the parse is the walk's bound: run 36.) Placing: every literal byte is written to `out` and every output byte i gets its
// source in `src`: FIN | its value for a literal byte (final), i - offset for a byte of a match
// (the byte it copies; for an overlapping match that is a byte of the same match, as the CPU decoder
// reads it). A match byte whose source was written by an earlier window of the same sub-block follows
// that entry's chain up to COLLAPSE hops there and then (most sources are recent): a chain that reaches a
// literal makes the byte final at once, and the passes have fewer hops left. Nothing in the walk reads
// another sub-block's output, so it needs no rounds. A sub-block that fails marks all its bytes final
// (its frame is refused from its status word). With W = 32 (CLC_GPU_SB_WG) one work-item parses and the
// other 31 place; with W = 1 the one work-item does both in turn.
//
// `lz3sb_jump` (passes 1, 2, ...): every byte not yet final follows its source chain up to JUMPS hops
// and keeps where it got to (pointer jumping: src[i] = src[src[i]]...). A byte whose chain reaches a
// final entry (FIN set: FIN | the byte's value) is final: it takes that value and FIN (the value travels
// in the entry, so no load of the literal's byte and no ordering between two stores is needed). Every source lies strictly before its byte in the same frame (the walk refuses an offset of 0 or
// one before the frame's start), so chains end at a literal and every pass at least doubles the hops a
// pending pointer spans: a frame of 2^24 bytes is final after at most 24 passes, whatever its bytes.
// Reads of entries that another work-item rewrites in the same pass see either value, and both are
// entries of the same chain, so no fences and no waiting are needed: a launch cannot hang. Work-group g
// takes tile order[g]: the host orders the tiles by sub-block row across the frames, so a tile's sources
// were mostly made final by tiles taken before it (one pass leaves 0.4 % of the bytes, run 46). A tile (the
// JW * JPER bytes of one work-group) whose bytes are all final is flagged `done` and skipped by later
// passes; `left[p]` counts the bytes still pending after pass p, and a pass after one that left none
// returns at once.
//
// status[k]: 0 ok, 1 truncated length, 2 literals past input, 3 output overrun, 4 truncated offset, 5 bad
// match (offset 0, before the frame's start, or past the sub-block's end), 6 short output, 8 a segment
// ending before its sub-block's input without a match part (a mid-point not at a sequence start).

#ifndef W
#define W 32u
#endif
// Two warps or more per group (W >= 64): work-item 0 parses windows of WIN sequences, the other warps
// (work-items 32..W-1) place them; the first warp's other lanes only keep the barriers.
#if W >= 64
#define WIN 32u
#else
#define WIN W
#endif
#ifndef COLLAPSE
#define COLLAPSE 8u  // hops the walk follows through sources this group wrote in earlier windows
#endif
#ifndef JUMPS
#define JUMPS 16u  // hops a pending byte follows in one pass
#endif
#ifndef JPER
#define JPER 8u  // bytes per work-item of `lz3sb_jump` (at JW-byte strides: coalesced)
#endif

#define ST_OK 0u
#define ST_TRUNC_LEN 1u
#define ST_LIT_PAST_INPUT 2u
#define ST_OVERRUN 3u
#define ST_TRUNC_OFF 4u
#define ST_BAD_MATCH 5u
#define ST_SHORT 6u
#define ST_MID 8u  // a segment that ends before its sub-block's input does ends without a match part
#define FIN 0x80000000u

#if W == 1
#define BARRIER(f)
#else
#define BARRIER(f) barrier(f)
#endif
#define BAR() BARRIER(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)

// Descriptor of sub-block k: 8 uints at desc[8k].
#define D_IN 0     // offset of its sequences in `in`
#define D_INLEN 1  // their length
#define D_OUT 2    // offset of its first output byte in `out`
#define D_POS 3    // that byte's position in its frame
#define D_LEN 4    // output bytes
#define D_FLAGS 7  // bit 0: a segment that ends before its sub-block's input does (its last sequence
                   // must have a match part: a mid-point is the start of the next sequence)

typedef struct {
    uint in, in_len, out, pos, len, flags;  // the sub-block or segment (descriptor fields)
    uint ip, op;                     // walk position (input, output in the sub-block)
    uint n;                          // sequences in the window (0: the walk is over)
    uint code;                       // status
} State;

// Reads a length extension at *ip; returns n plus its bytes, or sets *err.
inline uint read_ext(const __global uchar *src, uint len, uint *ip, uint n, uint *err) {
    for (;;) {
        if (*ip >= len) { *err = ST_TRUNC_LEN; return 0u; }
        uint b = src[*ip];
        (*ip)++;
        n += b;
        if (n > 0x7fffffffu) { *err = ST_OVERRUN; return 0u; }
        if (b != 255u) return n;
    }
}

// Parses up to W sequences at s->ip into the window arrays (literal source in `in`, output positions in
// `out`, match offset and length). Returns a status code.
inline uint parse(__local State *s, const __global uchar *in, __local uint *wls, __local uint *wld,
                  __local uint *wll, __local uint *wmo, __local uint *wml) {
    const __global uchar *src = in + s->in;
    uint ip = s->ip, op = s->op, in_len = s->in_len, len = s->len;
    uint n = 0u, code = ST_OK;
    while (n < WIN && ip < in_len) {
        uint t = src[ip];
        ip++;
        uint lit = t >> 4;
        if (lit == 15u) lit = read_ext(src, in_len, &ip, lit, &code);
        if (code != ST_OK) break;
        if (lit > in_len - ip) { code = ST_LIT_PAST_INPUT; break; }
        if (lit > len - op) { code = ST_OVERRUN; break; }
        wls[n] = s->in + ip;
        wld[n] = s->out + op;
        wll[n] = lit;
        ip += lit;
        op += lit;
        uint off = 0u, ml = 0u;
        if (ip < in_len) {
            if (in_len - ip < 3u) { code = ST_TRUNC_OFF; break; }
            off = src[ip] | ((uint)src[ip + 1u] << 8) | ((uint)src[ip + 2u] << 16);
            ip += 3u;
            ml = t & 15u;
            if (ml == 15u) ml = read_ext(src, in_len, &ip, ml, &code);
            if (code != ST_OK) break;
            ml += 4u;
            if (off == 0u || off > s->pos + op || ml > len - op) { code = ST_BAD_MATCH; break; }
        } else if (s->flags & 1u) {
            code = ST_MID;
            break;
        }
        wmo[n] = off;
        wml[n] = ml;
        op += ml;
        n++;
    }
    s->ip = ip;
    s->op = op;
    s->n = code == ST_OK ? n : 0u;
    return code;
}

#if W == 1
#define PL 1u     // placers
#define PL0 0u    // first placer
#elif W >= 64
#define PL (W - 32u)
#define PL0 32u
#else
#define PL (W - 1u)
#define PL0 1u
#endif

// Places window x's bytes (lanes PL0.., PL consecutive bytes at a time) and collapses chains into
// entries written by earlier windows of the same sub-block (sb: the sub-block's first output byte).
inline void place(const __global uchar *in, __global uchar *out, __global uint *src, uint n, uint sb,
                  uint lid, __local uint *wls, __local uint *wld, __local uint *wll, __local uint *wmo,
                  __local uint *wml) {
    uint lo = wld[0u], hi = wld[n - 1u] + wll[n - 1u] + wml[n - 1u];
    uint cur = 0u, ce = wld[0u] + wll[0u] + wml[0u];
    for (uint i = lo + lid - PL0; i < hi; i += PL) {
        while (i >= ce) {
            cur++;
            ce = wld[cur] + wll[cur] + wml[cur];
        }
        uint d = wld[cur], ll = wll[cur];
        if (i < d + ll) {
            uchar b = in[wls[cur] + (i - d)];
            out[i] = b;
            src[i] = FIN | b;
        } else {
            uint v = i - wmo[cur];
            for (uint h = 0u; h < COLLAPSE && v >= sb && v < lo; h++) {
                uint t = src[v];
                if (t & FIN) {
                    out[i] = (uchar)t;
                    v = t;
                    break;
                }
                v = t;
            }
            src[i] = v;
        }
    }
}

// Producer/consumer: work-item 0 parses window x + 1 into one half of the local queue while the others
// place window x from the other half (one barrier per window; with W = 1 the one work-item does both in
// turn).
__kernel __attribute__((reqd_work_group_size(W, 1, 1)))
void lz3sb_walk(const __global uchar *in, const __global uint *desc, __global uchar *out,
                __global uint *src, __global uint *status, uint nsub) {
    __local State s;
    __local uint wls[2u * WIN], wld[2u * WIN], wll[2u * WIN], wmo[2u * WIN], wml[2u * WIN], wn[2];
    uint k = get_group_id(0);
    if (k >= nsub) return;  // the whole group
    uint lid = get_local_id(0);
    if (lid == 0u) {
        const __global uint *d = desc + 8u * k;
        s.in = d[D_IN]; s.in_len = d[D_INLEN]; s.out = d[D_OUT]; s.pos = d[D_POS]; s.len = d[D_LEN];
        s.flags = d[D_FLAGS];
        s.ip = 0u; s.op = 0u; s.code = ST_OK;
        wn[0] = 0u;
        if (s.ip < s.in_len) {
            s.code = parse(&s, in, wls, wld, wll, wmo, wml);
            wn[0] = s.n;
        }
    }
    for (uint x = 0u;; x++) {
        BAR();
        uint b = (x & 1u) * WIN, nb = ((x + 1u) & 1u) * WIN;
        uint n = wn[x & 1u];
        if (n == 0u) break;  // the same for the whole group
        if (lid == 0u) {
            uint m = 0u;
            if (s.code == ST_OK && s.ip < s.in_len) {
                s.code = parse(&s, in, wls + nb, wld + nb, wll + nb, wmo + nb, wml + nb);
                m = s.n;
            }
            wn[(x + 1u) & 1u] = m;
        }
        if (lid >= PL0) place(in, out, src, n, s.out, lid, wls + b, wld + b, wll + b, wmo + b, wml + b);
    }
    uint code = s.code;
    if (code == ST_OK && s.op != s.len) code = ST_SHORT;
    if (lid == 0u) status[k] = code;
    if (code != ST_OK) {
        // Nothing waits on a failed sub-block; its frame is refused.
        uint o = s.out, len = s.len;
        for (uint i = lid; i < len; i += W) src[o + i] = FIN;
    }
}

// Pass p of the pointer jumping over the n output bytes of the batch; one work-group per tile of
// get_local_size(0) * JPER bytes; work-group g takes tile order[g] (the host's order: sub-block rows
// across the frames, so that a tile's sources were mostly made final by tiles taken before it).
__kernel void lz3sb_jump(__global uint *src, __global uchar *out, __global uchar *done,
                         __global uint *left, const __global uint *order, uint n, uint p) {
    __local uint cnt;
    uint tile = order[get_group_id(0)];
    // Uniform for the group: returns before any barrier, or none does.
    if ((p > 1u && left[p - 1u] == 0u) || done[tile] != 0u) return;
    uint lid = get_local_id(0), jw = get_local_size(0);
    uint base = tile * jw * JPER;
    if (lid == 0u) cnt = 0u;
    uint s[JPER], v0[JPER];
    uint wait = 0u, fin = 0u;  // bit j: byte j pending; became final in this pass
#pragma unroll
    for (uint j = 0u; j < JPER; j++) {
        uint i = base + j * jw + lid;
        uint v = i < n ? src[i] : FIN;
        s[j] = v;
        v0[j] = v;
        if ((v & FIN) == 0u) wait |= 1u << j;
    }
    for (uint h = 0u; h < JUMPS && wait != 0u; h++) {
        uint t[JPER];
#pragma unroll
        for (uint j = 0u; j < JPER; j++) t[j] = (wait >> j) & 1u ? src[min(s[j], n - 1u)] : 0u;
#pragma unroll
        for (uint j = 0u; j < JPER; j++) {
            if ((wait >> j) & 1u) {
                s[j] = t[j];
                if (t[j] & FIN) {
                    wait &= ~(1u << j);
                    fin |= 1u << j;
                }
            }
        }
    }
#pragma unroll
    for (uint j = 0u; j < JPER; j++) {
        uint i = base + j * jw + lid;
        if ((fin >> j) & 1u) {
            out[i] = (uchar)s[j];
            src[i] = s[j];
        } else if (((wait >> j) & 1u) && s[j] != v0[j]) {
            src[i] = s[j];
        }
    }
    uint nw = popcount(wait);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (nw != 0u) atomic_add(&cnt, nw);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0u) {
        if (cnt == 0u) done[tile] = 1u;
        else atomic_add(left + p, cnt);
    }
}
