// LZ_EXT3 decoder: one work-group of DWG work-items per frame (see docs/GPU.md).
//
// The block is decoded in windows of up to DWG sequences. Work-item 0 reads the window's sequence
// headers (token, length extensions, offset) into local memory and checks each against both buffers;
// then every work-item takes one sequence of the window:
//   1. literals: all of them at once (they depend on nothing); a run longer than LONG bytes is left
//      to the whole group, which copies it cooperatively;
//   2. matches, in rounds: a match may be copied once every byte it reads is final, i.e. its source
//      ends at or below the lowest output position of any match of the window not yet copied (the
//      bytes below that are literals, earlier windows and already copied matches). The lowest such
//      match always qualifies, so each round makes progress; on real data most matches point far
//      back and one or two rounds do. A copy reads byte i of a match from out[op - off + i % off]
//      (overlap repeats the `offset` bytes before it), so it never reads what it writes. Long
//      matches are again copied by the whole group.
// Barriers separate the phases; decoding is exact, so the result does not depend on DWG.
//
// Accepts exactly what the CPU decoder (src/codec/lz_ext3.rs) accepts: sequences until the input is
// consumed, the last one possibly without a match, and the output exactly raw_len bytes long. Every
// length and offset is checked before anything is written: writes stay in [0, raw_len).
// status[f]: 0 ok, 1 truncated length, 2 literals past input, 3 output overrun, 4 truncated offset,
// 5 bad match (offset 0, before the start, or past raw_len), 6 short output.

#define ST_OK 0u
#define ST_TRUNC_LEN 1u
#define ST_LIT_PAST_INPUT 2u
#define ST_OVERRUN 3u
#define ST_TRUNC_OFF 4u
#define ST_BAD_MATCH 5u
#define ST_SHORT 6u

// The window's input bytes [sb, sb + sn) are staged in local memory (`st`): work-item 0's serial
// header walk then reads local memory instead of waiting on global loads. Bytes outside the staged
// range (a long extension run, say) are read from global memory: the result is the same either way.
#define RD(i) ((i) - sb < sn ? (uint)st[(i) - sb] : (uint)src[i])

// Reads a length extension starting at *ip; returns n plus the bytes, or sets *err.
inline uint read_ext(const __global uchar *src, const __local uchar *st, uint sb, uint sn,
                     uint len, uint *ip, uint n, uint *err) {
    for (;;) {
        if (*ip >= len) { *err = ST_TRUNC_LEN; return 0; }
        uint b = RD(*ip);
        (*ip)++;
        n += b;
        if (n > 0x7fffffffu) { *err = ST_OVERRUN; return 0; }  // no frame is that long
        if (b != 255u) return n;
    }
}

#define S_DONE 0u
#define S_MORE 1u
#define S_FAIL 2u  // + status code

// Reads the sequence at *ip (output so far: op bytes). Fills lit/lsrc/off/ml (ml = 0: no match) and
// returns S_MORE, S_DONE (the block ends after these literals) or S_FAIL + code.
inline uint parse_seq(const __global uchar *src, const __local uchar *st, uint sb, uint sn,
                      uint len, uint raw, uint op, uint *ip, uint *lsrc, uint *lit, uint *off,
                      uint *ml) {
    uint err = ST_OK;
    *lit = 0; *ml = 0; *off = 0; *lsrc = 0;
    if (*ip >= len) return op == raw ? S_DONE : S_FAIL + ST_SHORT;
    uint t = RD(*ip);
    (*ip)++;
    uint l = t >> 4;
    if (l == 15u) l = read_ext(src, st, sb, sn, len, ip, l, &err);
    if (err != ST_OK) return S_FAIL + err;
    if (l > len - *ip) return S_FAIL + ST_LIT_PAST_INPUT;
    if (l > raw - op) return S_FAIL + ST_OVERRUN;
    *lsrc = *ip;
    *ip += l;
    uint have = op + l;
    if (*ip == len) {
        if (have != raw) return S_FAIL + ST_SHORT;
        *lit = l;
        return S_DONE;
    }
    if (len - *ip < 3u) return S_FAIL + ST_TRUNC_OFF;
    uint o = RD(*ip) | (RD(*ip + 1u) << 8) | (RD(*ip + 2u) << 16);
    *ip += 3;
    uint m = t & 15u;
    if (m == 15u) m = read_ext(src, st, sb, sn, len, ip, m, &err);
    if (err != ST_OK) return S_FAIL + err;
    m += 4u;
    if (o == 0u || o > have || m > raw - have) return S_FAIL + ST_BAD_MATCH;
    *lit = l; *off = o; *ml = m;
    return S_MORE;
}

#define LONG 64u
#define STAGE (DWG * 16u)  // staged input bytes per window
#define NONE 0xffffffffu

// Copies n bytes: dst[i] = s[i % period] (period >= n: a plain copy). Work-item `lid` of `step` takes
// 16-byte chunks lid, lid + step, ...; each chunk's bytes are all loaded before any is stored, so
// a chunk costs one memory latency rather than sixteen (the compiler cannot reorder a load past a
// store to the same buffer itself). Every byte read lies before the first byte written (the match
// source ends at or before its output; literals come from the input buffer), so no chunk reads what
// another writes.
inline void copy_chunks(__global uchar *dst, const __global uchar *s, uint n, uint period, uint lid,
                        uint step) {
    for (uint c = lid * 16u; c < n; c += step * 16u) {
        uint m = min(16u, n - c);
        if (m == 16u && period >= n) {
            vstore16(vload16(0, s + c), 0, dst + c);
            continue;
        }
        uchar t[16];
        uint j = period >= n ? c : c % period;
        for (uint k = 0; k < 16u; k++) {
            if (k < m) {
                t[k] = s[j];
                j = j + 1u == period ? 0u : j + 1u;
            }
        }
        for (uint k = 0; k < 16u; k++) {
            if (k < m) dst[c + k] = t[k];
        }
    }
}

__kernel __attribute__((reqd_work_group_size(DWG, 1, 1)))
void lz_decompress(const __global uchar *in, const __global ulong *in_off,
                   const __global uint *in_len, __global uchar *outbuf,
                   const __global ulong *out_off, const __global uint *out_len,
                   __global uint *status) {
    // The window: literal source, literal length, output position, match offset, match length.
    __local uint w_lsrc[DWG], w_lit[DWG], w_op[DWG], w_off[DWG], w_ml[DWG];
    __local uint w_long[DWG];  // indices of long literal runs / long ready matches
    __local uint w_n, w_state, w_nlong, w_min, w_ip;
    __local uchar stage[STAGE];
    uint f = get_group_id(0);
    uint lid = get_local_id(0);
    const __global uchar *src = in + in_off[f];
    __global uchar *out = outbuf + out_off[f];
    uint len = in_len[f], raw = out_len[f];
    uint ip = 0, op = 0;  // work-item 0's parse position
    if (lid == 0) w_ip = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (;;) {
        // Stage the input bytes the window's headers will most likely come from.
        uint sb = w_ip;
        uint sn = len > sb ? min(len - sb, (uint)STAGE) : 0u;
        for (uint i = lid; i < sn; i += DWG) stage[i] = src[sb + i];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid == 0) {
            uint n = 0, state = S_MORE;
            while (n < DWG) {
                uint lsrc, lit, off, ml;
                state = parse_seq(src, stage, sb, sn, len, raw, op, &ip, &lsrc, &lit, &off, &ml);
                if (state >= S_FAIL) break;
                w_lsrc[n] = lsrc; w_lit[n] = lit; w_op[n] = op; w_off[n] = off; w_ml[n] = ml;
                op += lit + ml;
                n++;
                if (state == S_DONE) break;
            }
            w_n = n;
            w_state = state;
            w_nlong = 0;
            w_ip = ip;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        uint n = w_n;
        uint state = w_state;

        // 1. literals
        uint lit = 0, lsrc = 0, sop = 0, off = 0, ml = 0;
        if (lid < n) {
            lit = w_lit[lid]; lsrc = w_lsrc[lid]; sop = w_op[lid]; off = w_off[lid]; ml = w_ml[lid];
            if (lit > LONG) w_long[atomic_inc(&w_nlong)] = lid;
            else copy_chunks(out + sop, src + lsrc, lit, lit, 0u, 1u);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        uint nlong = w_nlong;
        for (uint k = 0; k < nlong; k++) {
            uint x = w_long[k];
            copy_chunks(out + w_op[x], src + w_lsrc[x], w_lit[x], w_lit[x], lid, DWG);
        }

        // 2. matches, in rounds
        uint mop = sop + lit;
        bool todo = lid < n && ml > 0u;
        for (;;) {
            barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);  // copies of the last round are visible
            if (lid == 0) { w_min = NONE; w_nlong = 0; }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (todo) atomic_min(&w_min, mop);
            barrier(CLK_LOCAL_MEM_FENCE);
            uint lowest = w_min;
            if (lowest == NONE) break;
            // The source is out[mop - off, mop - off + min(off, ml)): ready if it ends at or below lowest.
            if (todo && mop - off + min(off, ml) <= lowest) {
                todo = false;
                if (ml > LONG) w_long[atomic_inc(&w_nlong)] = lid;
                else copy_chunks(out + mop, out + (mop - off), ml, off, 0u, 1u);
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            nlong = w_nlong;
            for (uint k = 0; k < nlong; k++) {
                uint x = w_long[k];
                uint to = w_op[x] + w_lit[x], o = w_off[x];
                copy_chunks(out + to, out + (to - o), w_ml[x], o, lid, DWG);
            }
        }

        if (state != S_MORE) {
            if (lid == 0) status[f] = state == S_DONE ? ST_OK : state - S_FAIL;
            return;
        }
    }
}
