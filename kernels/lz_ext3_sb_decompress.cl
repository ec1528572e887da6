// LZ_EXT3_SB decoder (codec 3, docs/FORMAT.md 2.2) in bulk-synchronous rounds: one work-group of W
// work-items (W = 32: one warp on NVIDIA; 1 on CPU devices) per sub-block, every sub-block of every frame
// of the batch at once, and one launch per round. docs/GPU.md has the design and the numbers.
//
// `marks` holds one ushort per output byte: the round (launch) in which the byte became final, 0 while it
// is not. Round 1 (`r == 1`) walks every sub-block: work-item 0 parses a window of up to W sequences
// (checking every length and offset as the CPU decoder does) into local arrays; work-item i places
// sequence i's literals, then tries its match. A match is copied when every byte it reads is final: a byte
// of its own sub-block once marked (by this group, earlier in this launch or before), a byte of another
// sub-block only if marked in an earlier launch (r' < r). Those bytes never change during this launch, so
// no fences, no waiting and no volatile loads are needed: a launch cannot hang. Tries repeat while they
// copy something (chains inside the window); what is left goes, in walk order, to the sub-block's pending
// list (global memory, one slot per 4 input bytes: never full). Rounds 2, 3, ... (`r > 1`) take each
// sub-block's pending list in order, W entries at a time, the same way, and compact what is still waiting
// in place. Each entry keeps how many of its source bytes were already seen final (`cur`), so no byte's
// mark is read twice as final. The host launches rounds until every pending list is empty (`total[r]`,
// the entries left after round r) or a bound, after which the frames left are redone on the CPU.
//
// A sub-block that fails marks all its bytes final (its frame is refused from its status word), so no
// match elsewhere waits on it. Every decision about the group's shape is taken by work-item 0 (`plan`),
// between barriers at the loop's top level (PoCL 3.1 cannot compile barriers inside branches of inlined
// functions in reasonable time).
//
// status[k]: 0 ok, 1 truncated length, 2 literals past input, 3 output overrun, 4 truncated offset, 5 bad
// match (offset 0, before the frame's start, or past the sub-block's end), 6 short output.

#ifndef W
#define W 32u
#endif
#ifndef LONG
#define LONG 16u  // literal runs and matches of at least LONG bytes are copied by the whole group
#endif

#define ST_OK 0u
#define ST_TRUNC_LEN 1u
#define ST_LIT_PAST_INPUT 2u
#define ST_OVERRUN 3u
#define ST_TRUNC_OFF 4u
#define ST_BAD_MATCH 5u
#define ST_SHORT 6u
#define NONE 0xffffffffu

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
#define D_Q 7      // index of its first pending slot in `pend` (in_len / 4 + 1 slots of 4 uints)

// What the group does next (work-item 0 decides, in `plan`).
#define M_NEW 0u     // work-item 0 takes the next sub-block
#define M_WINDOW 1u  // each work-item takes its entry of the window (round 1: and places its literals)
#define M_TRY 2u     // each work-item with a waiting match copies it if its bytes are final
#define M_FLUSH 3u   // each work-item still waiting appends its match to the pending list, in order
#define M_FAIL 4u    // the sub-block failed: mark all its bytes final
#define M_EXIT 5u

typedef struct {
    uint mode;
    uint k, in, in_len, out, pos, len, q;  // the sub-block (descriptor fields)
    uint ip, op;                           // round 1: walk position (input, output in the sub-block)
    uint rp, np;                           // later rounds: next entry to read, entries at the start
    uint wp;                               // entries written to the pending list
    uint n;                                // entries in the window
    uint left;                             // work-items waiting before the last try
} State;

// Checks and copies go CH bytes at a time with loads that do not wait on each other (one memory round
// trip per CH bytes instead of one per byte: the first kernel of this design, byte by byte, spent ~4 ms
// per round on dependent loads).
#ifndef CH
#define CH 16u
#endif
// A match whose bytes still to check number GCHK or more is checked by the whole group (once per window
// and round), W * CH bytes per memory round trip.
#ifndef GCHK
#define GCHK 256u
#endif

// The first index in [i, span) whose byte a + index is not final for round r (a byte below `own`, of
// another sub-block, counts only if marked in an earlier round), or span.
inline uint first_unready(const __global ushort *marks, uint a, uint i, uint span, uint own, uint r) {
    while (i < span) {
        uint lim = min(span - i, CH);
        uint bad = CH;
#pragma unroll
        for (uint j = 0u; j < CH; j++) {
            uint x = a + i + min(j, lim - 1u);
            uint m = marks[x];
            bool ok = m != 0u && (x >= own || m < r);
            bad = ok ? bad : min(bad, j);
        }
        if (bad < lim) return i + bad;
        i += lim;
    }
    return span;
}

// Copies n bytes to out[d..] from src[a..] (`off` 0: no overlap; else the match's offset, and byte j
// comes from a + j % off, all final) and marks them final in round rr; CH at a time.
inline void copy_lane(__global uchar *out, const __global uchar *src, __global ushort *marks, uint d,
                      uint a, uint off, uint n, ushort rr) {
    uchar v[CH];
    for (uint i = 0u; i < n; i += CH) {
        uint lim = min(n - i, CH);
#pragma unroll
        for (uint j = 0u; j < CH; j++) {
            uint k = i + min(j, lim - 1u);
            v[j] = src[a + (off != 0u && off < n ? k % off : k)];
        }
#pragma unroll
        for (uint j = 0u; j < CH; j++) {
            if (j < lim) {
                out[d + i + j] = v[j];
                marks[d + i + j] = rr;
            }
        }
    }
}

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

// Round 1: parses up to W sequences at s->ip into the window arrays (literal source in `in`, output
// positions in `out`). Returns a status code.
inline uint parse(__local State *s, const __global uchar *in, __local uint *wls, __local uint *wld,
                  __local uint *wll, __local uint *wmo, __local uint *wml) {
    const __global uchar *src = in + s->in;
    uint ip = s->ip, op = s->op, in_len = s->in_len, len = s->len;
    uint n = 0u, code = ST_OK;
    while (n < W && ip < in_len) {
        uint t = src[ip++];
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
        }
        wmo[n] = off;
        wml[n] = ml;
        op += ml;
        n++;
    }
    s->ip = ip;
    s->op = op;
    s->n = n;
    return code;
}

// Work-item 0: decides what the group does next.
inline void plan(__local State *s, const __global uchar *in, const __global uint *desc,
                 __global uint *status, __global uint *pcount, __global uint *total, uint nsub, uint r,
                 __local uint *waiting, __local uint *wls, __local uint *wld, __local uint *wll,
                 __local uint *wmo, __local uint *wml) {
    uint mode = s->mode;
    if (mode == M_WINDOW) {  // the window is placed: try its matches, if it has any
        uint left = 0u;
        for (uint i = 0u; i < s->n; i++) left += waiting[i];
        s->left = left;
        if (left > 0u) { s->mode = M_TRY; return; }
        mode = M_FLUSH;
    }
    if (mode == M_TRY) {
        uint left = 0u;
        bool checked = false;  // a group check was asked for: its result is read at the next try
        for (uint i = 0u; i < s->n; i++) {
            left += waiting[i] != 0u;
            checked |= waiting[i] == 2u;
        }
        if (left > 0u && (left < s->left || checked)) {  // something moved: try again (chains inside the window)
            s->left = left;
            return;
        }
        if (left > 0u) { s->mode = M_FLUSH; s->left = left; return; }
        mode = M_FLUSH;
        s->left = 0u;
    }
    if (mode == M_FLUSH) {
        s->wp += s->left;
        // The next window, or the end of the sub-block.
        bool more;
        if (r == 1u) {
            more = s->ip < s->in_len;
        } else {
            s->rp += s->n;
            more = s->rp < s->np;
        }
        if (more) {
            if (r == 1u) {
                uint code = parse(s, in, wls, wld, wll, wmo, wml);
                if (code != ST_OK) {
                    status[s->k] = code;
                    s->mode = M_FAIL;
                    return;
                }
            } else {
                s->n = min(W, s->np - s->rp);
            }
            s->left = s->n;
            s->mode = M_WINDOW;
            return;
        }
        if (r == 1u) status[s->k] = s->op == s->len ? ST_OK : ST_SHORT;
        if (r == 1u && s->op != s->len) { s->mode = M_FAIL; return; }
        pcount[s->k] = s->wp;
        if (s->wp > 0u) atomic_add(total + r, s->wp);
        mode = M_NEW;
    }
    if (mode == M_FAIL) {
        pcount[s->k] = 0u;
        mode = M_NEW;
    }
    if (mode == M_NEW) {
        for (;;) {
            uint k = s->k == NONE ? get_group_id(0) : s->k + get_num_groups(0);
            if (k >= nsub) { s->mode = M_EXIT; return; }
            s->k = k;
            const __global uint *d = desc + 8u * k;
            s->in = d[D_IN]; s->in_len = d[D_INLEN]; s->out = d[D_OUT]; s->pos = d[D_POS];
            s->len = d[D_LEN]; s->q = d[D_Q];
            s->wp = 0u;
            s->rp = 0u;
            if (r == 1u) {
                s->ip = 0u;
                s->op = 0u;
                uint code = parse(s, in, wls, wld, wll, wmo, wml);
                if (code != ST_OK) {
                    status[k] = code;
                    s->mode = M_FAIL;
                    return;
                }
                if (s->n == 0u) {  // no sequences (only an empty sub-block has none)
                    status[k] = s->len == 0u ? ST_OK : ST_SHORT;
                    pcount[k] = 0u;
                    if (s->len != 0u) { s->mode = M_FAIL; return; }
                    continue;
                }
            } else {
                s->np = pcount[k];
                if (s->np == 0u) continue;
                s->n = min(W, s->np);
            }
            s->left = s->n;
            s->mode = M_WINDOW;
            return;
        }
    }
}

__kernel __attribute__((reqd_work_group_size(W, 1, 1)))
void lz3sb_round(const __global uchar *in, const __global uint *desc, __global uchar *out,
                 __global ushort *marks, __global uint *status, __global uint *pend,
                 __global uint *pcount, __global uint *total, uint nsub, uint r) {
    __local State s;
    __local uint waiting[W];
    __local uint wls[W], wld[W], wll[W], wmo[W], wml[W];
    __local uint gsrc[W], gdst[W], goff[W], glen[W];  // copies for the whole group (goff 0: literals)
    __local uint gck[W], gcka[W], gckfrom[W], gckspan[W];  // checks for the whole group
    volatile __local uint gbad[W];                          // their results (first byte not final)
    uint lid = get_local_id(0);
    uint dst = 0u, off = 0u, len = 0u, cur = 0u;  // this work-item's match (len 0: none)
    bool wait = false;
    bool gchecked = false, gpending = false;  // this match had its group check; its result is pending
    ushort rr = (ushort)r;
    if (lid == 0u) { s.mode = M_NEW; s.k = NONE; }
    for (;;) {
        BAR();
        if (lid == 0u) plan(&s, in, desc, status, pcount, total, nsub, r, waiting, wls, wld, wll, wmo, wml);
        BAR();
        uint mode = s.mode;
        if (mode == M_EXIT) return;
        uint nfail = mode == M_FAIL ? s.len : 0u;
        for (uint i = lid; i < nfail; i += W) marks[s.out + i] = rr;
        if (mode == M_WINDOW) {
            wait = false;
            gchecked = false;
            gpending = false;
            len = 0u;
            glen[lid] = 0u;
            if (lid < s.n) {
                if (r == 1u) {
                    uint n = wll[lid];
                    uint d = wld[lid];
                    if (n >= LONG) {
                        gsrc[lid] = wls[lid]; gdst[lid] = d; goff[lid] = 0u; glen[lid] = n;
                    } else {
                        copy_lane(out, in, marks, d, wls[lid], 0u, n, rr);
                    }
                    dst = d + n;
                    off = wmo[lid];
                    len = wml[lid];
                    cur = 0u;
                } else {
                    const __global uint *e = pend + 4u * (s.q + s.rp + lid);
                    dst = e[0]; off = e[1]; len = e[2]; cur = e[3];
                }
                wait = len > 0u;
            }
            waiting[lid] = wait;
        } else if (mode == M_TRY) {
            glen[lid] = 0u;
            gck[lid] = 0u;
            if (wait) {
                uint a = dst - off;
                uint span = min(off, len);
                uint own = s.out;
                if (gpending) {
                    cur = gbad[lid];
                    gpending = false;
                }
                uint i = cur;
                if (!gchecked && span - cur >= GCHK) {
                    gcka[lid] = a; gckfrom[lid] = cur; gckspan[lid] = span; gbad[lid] = span;
                    gck[lid] = 1u;
                    gchecked = true;
                    gpending = true;
                } else {
                    i = first_unready(marks, a, cur, span, own, r);
                }
                cur = i;
                if (gpending) {
                    // wait for the group check
                } else if (i == span && len >= LONG) {
                    gsrc[lid] = a; gdst[lid] = dst; goff[lid] = off; glen[lid] = len;
                    wait = false;
                } else if (i == span) {
                    copy_lane(out, out, marks, dst, a, off, len, rr);
                    wait = false;
                }
            }
            waiting[lid] = wait ? (gpending ? 2u : 1u) : 0u;
        } else if (mode == M_FLUSH) {
            if (wait) {
                uint at = 0u;
                for (uint j = 0u; j < lid; j++) at += waiting[j] != 0u;
                __global uint *e = pend + 4u * (s.q + s.wp + at);
                e[0] = dst; e[1] = off; e[2] = len; e[3] = cur;
            }
            wait = false;
        }
        BAR();
        // Long literal runs (window) and long ready matches (try), one after another, by the whole group
        // (`i % off`: an overlapping match repeats its first `off` bytes, all final).
        uint ng = (mode == M_WINDOW || mode == M_TRY) ? s.n : 0u;
        for (uint x = 0u; x < ng; x++) {
            uint n = glen[x];
            uint d = gdst[x], o = goff[x], a = gsrc[x];
            if (o == 0u) {
                for (uint i = lid; i < n; i += W) { out[d + i] = in[a + i]; marks[d + i] = rr; }
            } else if (o >= n) {
                for (uint i = lid; i < n; i += W) { out[d + i] = out[a + i]; marks[d + i] = rr; }
            } else {
                for (uint i = lid; i < n; i += W) { out[d + i] = out[a + i % o]; marks[d + i] = rr; }
            }
            if (mode == M_TRY && gck[x] != 0u) {
                // Each work-item checks every W-th byte, CH loads per round trip, up to its first byte
                // not final; the lowest of those is the match's first byte not final.
                uint ca = gcka[x], span = gckspan[x], own = s.out, bad = span;
                for (uint base = gckfrom[x]; base < span && bad == span; base += W * CH) {
#pragma unroll
                    for (uint j = 0u; j < CH; j++) {
                        uint idx = base + j * W + lid;
                        uint y = ca + min(idx, span - 1u);
                        uint m = marks[y];
                        bool ok = m != 0u && (y >= own || m < r);
                        bad = (ok || idx >= span) ? bad : min(bad, idx);
                    }
                }
                if (bad < span) atomic_min(&gbad[x], bad);
            }
        }
        BAR();  // one path back to the loop's top (PoCL needs it so)
    }
}
