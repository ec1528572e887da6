// LZ_EXT3 decoder: one work-group per frame (see docs/GPU.md).
//
// Work-item 0 reads each sequence header (token, length extensions, offset) and checks it against
// both buffers; the whole group then copies the literals and the match. A match copy is done in
// parallel too: with overlap (offset < length) the output repeats the `offset` bytes before it, so
// byte i of the match is out[op - off + i % off], which no other byte of the same match writes.
// Barriers order a match after the literals and earlier matches it may read.
//
// Accepts exactly what the CPU decoder (src/codec/lz_ext3.rs) accepts: sequences until the input is
// consumed, the last one possibly without a match, and the output exactly raw_len bytes long.
// status[f]: 0 ok, 1 truncated length, 2 literals past input, 3 output overrun, 4 truncated offset,
// 5 bad match (offset 0, before the start, or past raw_len), 6 short output.

#define ST_OK 0u
#define ST_TRUNC_LEN 1u
#define ST_LIT_PAST_INPUT 2u
#define ST_OVERRUN 3u
#define ST_TRUNC_OFF 4u
#define ST_BAD_MATCH 5u
#define ST_SHORT 6u

// Reads a length extension starting at *ip; returns n plus the bytes, or sets *err.
inline uint read_ext(const __global uchar *src, uint len, uint *ip, uint n, uint *err) {
    for (;;) {
        if (*ip >= len) { *err = ST_TRUNC_LEN; return 0; }
        uint b = src[(*ip)++];
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
inline uint parse_seq(const __global uchar *src, uint len, uint raw, uint op, uint *ip,
                      uint *lsrc, uint *lit, uint *off, uint *ml) {
    uint err = ST_OK;
    *lit = 0; *ml = 0; *off = 0; *lsrc = 0;
    if (*ip >= len) return op == raw ? S_DONE : S_FAIL + ST_SHORT;
    uint t = src[(*ip)++];
    uint l = t >> 4;
    if (l == 15u) l = read_ext(src, len, ip, l, &err);
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
    uint o = (uint)src[*ip] | ((uint)src[*ip + 1] << 8) | ((uint)src[*ip + 2] << 16);
    *ip += 3;
    uint m = t & 15u;
    if (m == 15u) m = read_ext(src, len, ip, m, &err);
    if (err != ST_OK) return S_FAIL + err;
    m += 4u;
    if (o == 0u || o > have || m > raw - have) return S_FAIL + ST_BAD_MATCH;
    *lit = l; *off = o; *ml = m;
    return S_MORE;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void lz_decompress(const __global uchar *in, const __global ulong *in_off,
                   const __global uint *in_len, __global uchar *outbuf,
                   const __global ulong *out_off, const __global uint *out_len,
                   __global uint *status) {
    // Sequence header broadcast from work-item 0: lit_src, lit_len, match_off, match_len, state.
    __local uint hdr[5];
    uint f = get_group_id(0);
    uint lid = get_local_id(0);
    const __global uchar *src = in + in_off[f];
    __global uchar *out = outbuf + out_off[f];
    uint len = in_len[f], raw = out_len[f];
    uint ip = 0, op = 0;  // ip is used by work-item 0 only; op is kept by all
    for (;;) {
        if (lid == 0) {
            uint lsrc, lit, off, ml;
            hdr[4] = parse_seq(src, len, raw, op, &ip, &lsrc, &lit, &off, &ml);
            hdr[0] = lsrc; hdr[1] = lit; hdr[2] = off; hdr[3] = ml;
        }
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
        uint lsrc = hdr[0], lit = hdr[1], off = hdr[2], ml = hdr[3], state = hdr[4];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint i = lid; i < lit; i += WG) out[op + i] = src[lsrc + i];
        op += lit;
        if (ml > 0u) {
            barrier(CLK_GLOBAL_MEM_FENCE);  // the match may read the literals just written
            __global uchar *dst = out + op;
            const __global uchar *from = out + op - off;
            for (uint i = lid; i < ml; i += WG) dst[i] = from[i % off];
            op += ml;
        }
        if (state != S_MORE) {
            if (lid == 0) status[f] = state == S_DONE ? ST_OK : state - S_FAIL;
            return;
        }
    }
}
