// LZ_EXT3_SB decoder (codec 3, docs/FORMAT.md 2.2): one work-group of W work-items (W = 32: one warp on
// NVIDIA; 1 on CPU devices) per sub-block, every sub-block of every frame of the launch at once.
// docs/GPU.md has the design and the numbers.
//
// Readiness is per byte: `bits` holds one bit per output byte of the launch, set once the byte is final
// (written, then fenced). A match may be copied once every byte it reads is final, wherever those bytes
// are (its own sub-block, an earlier one), so matches are resolved out of order, as soon as their
// sources are there, and many at a time.
//
// Work-groups take sub-blocks in order from a counter (`ticket`). The walk goes in windows of up to W
// sequences: work-item 0 parses a window's headers (checking every length and offset as the CPU decoder
// does) into local arrays; then work-item i places sequence i's literals and tries its match, in rounds
// while some match of the window got copied in the last round (chains inside the window). Matches still
// waiting are set aside in a queue (global memory, one slot per 4 input bytes: never full) and the walk
// goes on; after each window, and in a loop once the walk is over, the group tries W queued matches at a
// time, cycling over the queue, until none is left. Copies of more than LONG bytes are done by the whole
// group (their readiness checked by the whole group too); shorter ones by their own work-item.
//
// No launch can hang: the walk never waits; sub-blocks are taken in order, so the lowest unfinished one
// only reads bytes of finished sub-blocks (all final) and of its own, where the lowest queued match reads
// only bytes below it, all final once the walk is over. A sub-block that fails sets all its bits (its
// frame is refused from its status word), so nothing waits on it forever.
//
// Memory model: bytes and bits that another work-group may write during this launch are read with
// `ldv`/`ldw` (volatile, or `ld.global.cg` on NVIDIA: past the non-coherent L1); a work-item fences
// (`FENCE`) between its copy and setting the bits (atomic_or), and between finding bytes final and
// reading them. Every decision about the group's shape is taken by work-item 0 (`plan`), between
// barriers, so the group never diverges; barriers are at the loop's top level only (PoCL 3.1 cannot
// compile barriers inside branches of inlined functions in reasonable time).
//
// status[k]: 0 ok, 1 truncated length, 2 literals past input, 3 output overrun, 4 truncated offset, 5 bad
// match (offset 0, before the frame's start, or past the sub-block's end), 6 short output.

#ifndef W
#define W 32u
#endif
#ifndef LONG
#define LONG 32u
#endif

#define ST_OK 0u
#define ST_TRUNC_LEN 1u
#define ST_LIT_PAST_INPUT 2u
#define ST_OVERRUN 3u
#define ST_TRUNC_OFF 4u
#define ST_BAD_MATCH 5u
#define ST_SHORT 6u
#define NONE 0xffffffffu

#ifdef CLC_PTX
// NVIDIA: loads that go to L2 (.cg) and a device-wide fence.
inline uint ldv(const __global uchar *p) {
    uint v;
    asm volatile("ld.global.cg.u8 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
inline uint ldw(const __global uint *p) {
    uint v;
    asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
#define FENCE() asm volatile("membar.gl;" ::: "memory")
#else
#define ldv(p) ((uint)*(const volatile __global uchar *)(p))
#define ldw(p) (*(const volatile __global uint *)(p))
#define FENCE() mem_fence(CLK_GLOBAL_MEM_FENCE)
#endif

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
#define D_Q 7      // index of its first queue slot in `queue` (in_len / 4 + 1 slots of 3 uints)

// What the group does in an iteration (chosen by work-item 0).
#define M_WIN 1u    // place the window's literals, try its matches
#define M_ROUND 2u  // try the window's matches again
#define M_RETRY 3u  // try queue entries [rp, rp + W)
#define M_FAIL 4u   // the sub-block failed: set all its bits
#define M_EXIT 5u

typedef struct {
    uint mode;                          // for this iteration
    uint k, in, in_len, out, pos, len, q;  // the sub-block (descriptor fields; q: first queue uint)
    uint ip, op;                        // walk position: input, output (in the sub-block)
    uint lo, tail, rp;                  // queued matches: [lo, tail) (done ones have length 0), next try
    uint n, left;                       // sequences in the window; its matches left (before the round)
    uint nl;                            // long copies pushed this iteration
} State;

// A long copy, done by the group: literals in[src..] or a match (offset src) to out[dst..dst+len).
typedef struct {
    uint ref;   // done flag: < W window slot, else W + queue entry; NONE for literals
    uint dst, src, len;
    uint lit;   // 1: literals
    uint nr;    // set when a byte it reads is not final
} Long;

// Bit mask of word w's bits inside [a, e).
inline uint word_mask(uint w, uint a, uint e) {
    uint m = 0xffffffffu;
    if (w == (a >> 5)) m &= 0xffffffffu << (a & 31u);
    if (w == ((e - 1u) >> 5)) m &= 0xffffffffu >> (31u - ((e - 1u) & 31u));
    return m;
}

// Whether output bytes [a, a + n) are final (n > 0).
inline bool ready(const __global uint *bits, uint a, uint n) {
    uint e = a + n;
    for (uint w = a >> 5; w <= (e - 1u) >> 5; w++) {
        uint m = word_mask(w, a, e);
        if ((ldw(bits + w) & m) != m) return false;
    }
    return true;
}

// Marks output bytes [a, a + n) final (after the caller's fence).
inline void mark(volatile __global uint *bits, uint a, uint n) {
    uint e = a + n;
    for (uint w = a >> 5; w <= (e - 1u) >> 5; w++) atomic_or(bits + w, word_mask(w, a, e));
}

// Match copy by one work-item: out[dst..dst+n) from `off` back, forward semantics (reads only the
// source span, which is final).
inline void copy_match(__global uchar *out, uint dst, uint off, uint n) {
    __global uchar *d = out + dst;
    const __global uchar *s = d - off;
    if (off >= n) {
        uint i = 0u;
        for (; i + 8u <= n; i += 8u) {
            uchar b0 = ldv(s + i), b1 = ldv(s + i + 1u), b2 = ldv(s + i + 2u), b3 = ldv(s + i + 3u);
            uchar b4 = ldv(s + i + 4u), b5 = ldv(s + i + 5u), b6 = ldv(s + i + 6u), b7 = ldv(s + i + 7u);
            d[i] = b0; d[i + 1u] = b1; d[i + 2u] = b2; d[i + 3u] = b3;
            d[i + 4u] = b4; d[i + 5u] = b5; d[i + 6u] = b6; d[i + 7u] = b7;
        }
        for (; i < n; i++) d[i] = (uchar)ldv(s + i);
    } else {
        for (uint i = 0u; i < n; i++) d[i] = (uchar)ldv(s + i % off);
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

// Parses the next window of up to W sequences into the local arrays; returns a status code.
inline uint parse(__local State *s, const __global uchar *in, __local uint *ls, __local uint *ld,
                  __local uint *ll, __local uint *md, __local uint *mo, __local uint *ml) {
    const __global uchar *src = in + s->in;
    uint ip = s->ip, op = s->op, in_len = s->in_len, len = s->len;
    uint n = 0u, code = ST_OK, matches = 0u;
    while (n < W && ip < in_len) {
        uint t = src[ip++];
        uint lit = t >> 4;
        if (lit == 15u) lit = read_ext(src, in_len, &ip, lit, &code);
        if (code == ST_OK && lit > in_len - ip) code = ST_LIT_PAST_INPUT;
        if (code == ST_OK && lit > len - op) code = ST_OVERRUN;
        if (code != ST_OK) break;
        ls[n] = s->in + ip;
        ld[n] = s->out + op;
        ll[n] = lit;
        ml[n] = 0u;
        ip += lit;
        op += lit;
        if (ip < in_len) {
            uint off = 0u, m = 0u;
            if (in_len - ip < 3u) code = ST_TRUNC_OFF;
            if (code == ST_OK) {
                off = src[ip] | ((uint)src[ip + 1u] << 8) | ((uint)src[ip + 2u] << 16);
                ip += 3u;
                m = t & 15u;
                if (m == 15u) m = read_ext(src, in_len, &ip, m, &code);
                m += 4u;
            }
            if (code == ST_OK && (off == 0u || off > s->pos + op || m > len - op)) code = ST_BAD_MATCH;
            if (code != ST_OK) break;
            md[n] = s->out + op;
            mo[n] = off;
            ml[n] = m;
            op += m;
            matches++;
        }
        n++;
    }
    s->ip = ip;
    s->op = op;
    s->n = n;
    s->left = matches + 1u;  // the first round always counts as progress
    return code;
}

// Work-item 0: chooses the group's next iteration from what the last one left (`s->mode`).
inline void plan(__local State *s, const __global uchar *in, const __global uint *desc,
                 __global uint *status, volatile __global uint *ticket, __global uint *queue, uint nsub,
                 __local uint *ls, __local uint *ld, __local uint *ll, __local uint *md, __local uint *mo,
                 __local uint *ml) {
    uint mode = s->mode;
    s->nl = 0u;
    bool take = mode == M_FAIL || mode == 0u;
    if (mode == M_WIN || mode == M_ROUND) {
        uint left = 0u;
        for (uint i = 0u; i < s->n; i++) left += ml[i] != 0u;
        if (left > 0u && left < s->left) {
            s->left = left;
            s->mode = M_ROUND;
            return;
        }
        __global uint *q = queue + s->q;
        for (uint i = 0u; i < s->n; i++) {
            if (ml[i] != 0u) {
                uint t = 3u * s->tail++;
                q[t] = md[i]; q[t + 1u] = mo[i]; q[t + 2u] = ml[i];
            }
        }
        s->n = 0u;
        if (s->lo < s->tail) {
            if (s->rp < s->lo || s->rp >= s->tail) s->rp = s->lo;
            s->mode = M_RETRY;
            return;
        }
    } else if (mode == M_RETRY) {
        __global uint *q = queue + s->q;
        while (s->lo < s->tail && q[3u * s->lo + 2u] == 0u) s->lo++;
        s->rp += W;
        if (s->rp >= s->tail || s->rp < s->lo) s->rp = s->lo;
        if (s->ip >= s->in_len && s->lo < s->tail) return;  // walk over: keep trying
    }
    for (;;) {
        if (take) {
            uint k = atomic_inc(ticket);
            if (k >= nsub) { s->mode = M_EXIT; return; }
            const __global uint *d = desc + 8u * k;
            s->k = k; s->in = d[D_IN]; s->in_len = d[D_INLEN]; s->out = d[D_OUT]; s->pos = d[D_POS];
            s->len = d[D_LEN]; s->q = 3u * d[D_Q];
            s->ip = 0u; s->op = 0u; s->lo = 0u; s->tail = 0u; s->rp = 0u; s->n = 0u;
            take = false;
        }
        if (s->ip >= s->in_len) {  // the walk is over
            if (s->op != s->len) {
                status[s->k] = ST_SHORT;
                s->mode = M_FAIL;
                return;
            }
            if (s->lo < s->tail) {
                s->mode = M_RETRY;
                return;
            }
            status[s->k] = ST_OK;
            take = true;
            continue;
        }
        uint code = parse(s, in, ls, ld, ll, md, mo, ml);
        if (code != ST_OK) {
            status[s->k] = code;
            s->n = 0u;
            s->mode = M_FAIL;
            return;
        }
        s->mode = M_WIN;
        return;
    }
}

inline void push(__local State *s, __local Long *lg, uint ref, uint dst, uint src, uint len, uint lit) {
    uint x = atomic_inc(&s->nl);
    lg[x].ref = ref; lg[x].dst = dst; lg[x].src = src; lg[x].len = len; lg[x].lit = lit; lg[x].nr = 0u;
}

inline void set_done(__local uint *ml, __global uint *q, uint ref) {
    if (ref < W) ml[ref] = 0u;
    else q[3u * (ref - W) + 2u] = 0u;
}

__kernel __attribute__((reqd_work_group_size(W, 1, 1)))
void lz3sb_decode(const __global uchar *in, const __global uint *desc, __global uchar *out,
                  volatile __global uint *bits, __global uint *status, volatile __global uint *ticket,
                  __global uint *queue, uint nsub) {
    __local State s;
    __local uint ls[W], ld[W], ll[W], md[W], mo[W], ml[W];
    __local Long lg[2u * W];
    uint lid = get_local_id(0);
    if (lid == 0u) s.mode = 0u;
    for (;;) {
        BAR();
        if (lid == 0u) plan(&s, in, desc, status, ticket, queue, nsub, ls, ld, ll, md, mo, ml);
        BAR();
        uint mode = s.mode;
        if (mode == M_EXIT) return;
        __global uint *q = queue + s.q;
        // Short copies by their own work-item; long ones pushed for the group.
        if (mode == M_WIN && lid < s.n) {
            uint n = ll[lid];
            if (n > LONG) {
                push(&s, lg, NONE, ld[lid], ls[lid], n, 1u);
            } else if (n > 0u) {
                __global uchar *d = out + ld[lid];
                const __global uchar *sp = in + ls[lid];
                for (uint i = 0u; i < n; i++) d[i] = sp[i];
                FENCE();
                mark(bits, ld[lid], n);
            }
        }
        uint mdst = 0u, moff = 0u, mlen = 0u, ref = NONE;
        if ((mode == M_WIN || mode == M_ROUND) && lid < s.n && ml[lid] != 0u) {
            mdst = md[lid]; moff = mo[lid]; mlen = ml[lid]; ref = lid;
        }
        if (mode == M_RETRY) {
            uint e = s.rp + lid;
            if (e < s.tail && q[3u * e + 2u] != 0u) {
                mdst = q[3u * e]; moff = q[3u * e + 1u]; mlen = q[3u * e + 2u]; ref = W + e;
            }
        }
        if (mlen > LONG) {
            push(&s, lg, ref, mdst, moff, mlen, 0u);
        } else if (mlen > 0u && ready((const __global uint *)bits, mdst - moff, min(moff, mlen))) {
            FENCE();
            copy_match(out, mdst, moff, mlen);
            FENCE();
            mark(bits, mdst, mlen);
            set_done(ml, q, ref);
        }
        if (mode == M_FAIL) {
            uint a = s.out, e = s.out + s.len;
            if (s.len > 0u)
                for (uint w = (a >> 5) + lid; w <= (e - 1u) >> 5; w += W) atomic_or(bits + w, word_mask(w, a, e));
        }
        BAR();
        // Long copies: readiness, by the whole group.
        uint nl = s.nl;
        for (uint x = 0u; x < nl; x++) {
            if (lg[x].lit) continue;
            uint a = lg[x].dst - lg[x].src, e = a + min(lg[x].src, lg[x].len);
            for (uint w = (a >> 5) + lid; w <= (e - 1u) >> 5; w += W) {
                uint m = word_mask(w, a, e);
                if ((ldw((const __global uint *)bits + w) & m) != m) lg[x].nr = 1u;
            }
        }
        BAR();
        if (nl > 0u) FENCE();
        for (uint x = 0u; x < nl; x++) {
            if (lg[x].nr) continue;
            uint n = lg[x].len;
            __global uchar *d = out + lg[x].dst;
            if (lg[x].lit) {
                const __global uchar *sp = in + lg[x].src;
                for (uint i = lid; i < n; i += W) d[i] = sp[i];
                continue;
            }
            uint off = lg[x].src;
            const __global uchar *sp = d - off;
            if (off >= n) {
                uint i = lid;
                for (; i + 3u * W < n; i += 4u * W) {
                    uint a = ldv(sp + i), b = ldv(sp + i + W), c = ldv(sp + i + 2u * W), f = ldv(sp + i + 3u * W);
                    d[i] = (uchar)a; d[i + W] = (uchar)b; d[i + 2u * W] = (uchar)c; d[i + 3u * W] = (uchar)f;
                }
                for (; i < n; i += W) d[i] = (uchar)ldv(sp + i);
            } else {
                for (uint i = lid; i < n; i += W) d[i] = (uchar)ldv(sp + i % off);
            }
        }
        if (nl > 0u) FENCE();
        BAR();
        // Long copies: their bits, and done.
        for (uint x = 0u; x < nl; x++) {
            if (lg[x].nr) continue;
            uint a = lg[x].dst, e = a + lg[x].len;
            for (uint w = (a >> 5) + lid; w <= (e - 1u) >> 5; w += W) atomic_or(bits + w, word_mask(w, a, e));
            if (lid == 0u && lg[x].ref != NONE) set_done(ml, q, lg[x].ref);
        }
    }
}
