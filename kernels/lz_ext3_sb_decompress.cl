// LZ_EXT3_SB decoder (codec 3, docs/FORMAT.md 2.2): one work-group of W work-items (W = 32: one warp on
// NVIDIA; 1 on CPU devices) per sub-block, every sub-block of every frame of the launch at once.
// docs/GPU.md has the design and the numbers.
//
// Work-groups take sub-blocks in order from a counter (`ticket`). Work-item 0 runs a small state machine
// (below, `step`): it parses the sub-block's sequences and decides, and the whole group then carries out
// the copy it chose (a literal run, then a match), so the loop has one shape with barriers only at its
// top level. A match is copied at once when every byte it reads is final, otherwise it is set aside in a
// queue (local memory) and the walk goes on. A byte of an earlier sub-block is final below that
// sub-block's published `progress`; a byte of the group's own sub-block is final unless it lies in a
// set-aside match. After its walk (or when the queue is full) the group retries the set-aside matches in
// order, publishing its own progress (its start up to its first set-aside match) before it waits.
// Sub-blocks are taken in order, so the lowest unfinished one waits on nothing unfinished: every launch
// ends, whatever the bytes. A sub-block that fails publishes itself complete (the host refuses its
// frame from its status), so nothing waits on it forever.
//
// Memory model: decoded bytes that another work-group may have written during this launch are read with
// `ldv` (volatile, or `ld.global.cg` on NVIDIA: past the non-coherent L1); before work-item 0 stores a
// progress value, every work-item has fenced its writes (`FENCE`) and the group has met at a barrier.
// Progress values are read and every decision taken by work-item 0 alone, so the group never diverges.
//
// Checks: every length and offset, as the CPU decoder does (the host has checked the table); writes stay
// inside the sub-block's output. status[k]: 0 ok, 1 truncated length, 2 literals past input, 3 output
// overrun, 4 truncated offset, 5 bad match (offset 0, before the frame's start, or past the sub-block's
// end), 6 short output.

#ifndef W
#define W 32u
#endif
#ifndef QCAP
#define QCAP 128u
#endif
#ifndef PUB
#define PUB 4096u
#endif

#define ST_OK 0u
#define ST_TRUNC_LEN 1u
#define ST_LIT_PAST_INPUT 2u
#define ST_OVERRUN 3u
#define ST_TRUNC_OFF 4u
#define ST_BAD_MATCH 5u
#define ST_SHORT 6u
#define DONE 0xffffffffu

#ifdef CLC_PTX
// NVIDIA: loads that go to L2 (.cg) and a device-wide fence.
inline uint ldv(const __global uchar *p) {
    uint v;
    asm volatile("ld.global.cg.u8 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
#define FENCE() asm volatile("membar.gl;" ::: "memory")
#else
#define ldv(p) ((uint)*(const volatile __global uchar *)(p))
#define FENCE() mem_fence(CLK_GLOBAL_MEM_FENCE)
#endif

#if W == 1
#define BARRIER(f)
#else
#define BARRIER(f) barrier(f)
#endif

// Descriptor of sub-block k: 8 uints at desc[8k].
#define D_IN 0     // offset of its sequences in `in`
#define D_INLEN 1  // their length
#define D_OUT 2    // offset of its first output byte in `out`
#define D_POS 3    // that byte's position in its frame
#define D_LEN 4    // output bytes
#define D_FIRST 5  // index of its frame's sub-block 0
#define D_LOG 6    // log2 of its frame's sub-block size

// Work-item 0's modes.
#define M_NEW 0u    // take the next sub-block
#define M_WALK 1u   // parse the next sequence
#define M_DRAIN 2u  // the queue is full: retry it, then walk on
#define M_RETRY 3u  // the walk is over: retry until the queue is empty
#define M_EXIT 4u

// What the group does after a step (written by work-item 0, read by all).
typedef struct {
    uint mode;
    uint lit_src, lit_dst, lit_len;  // copy in[lit_src..] to out[lit_dst..]
    uint m_dst, m_off, m_len;        // copy out[m_dst - m_off..] to out[m_dst..] (forward semantics)
    uint fence;                      // fence writes: work-item 0 publishes progress at the next step
} Job;

// Work-item 0's state, kept in local memory.
typedef struct {
    uint k, in, in_len, out, pos, len, first, lg;  // the sub-block (descriptor fields)
    uint ip, op;                                   // walk position: input, output (in the sub-block)
    uint n, i, kept, done;                         // queue length; retry pass: next item, kept, copied
    uint published, pub_val, pub_pending;          // progress published; one to publish next step
    uint prev_j, prev_p;                           // last progress read (earlier sub-block, value)
    uint q_op[QCAP], q_off[QCAP], q_len[QCAP];     // set-aside matches: position, offset, length
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

// Whether the match at position p (in the sub-block) with offset off and length ml reads only final
// bytes, given the first `kept` set-aside matches (sorted, disjoint).
inline bool ready(__local State *s, volatile __global uint *progress, uint p, uint off, uint ml,
                  uint kept) {
    // Frame positions of the bytes it reads: [a, z).
    uint a = s->pos + p - off;
    uint z = a + min(off, ml);
    if (a < s->pos) {
        uint e = min(z, s->pos);
        for (uint j = a >> s->lg; j <= (e - 1u) >> s->lg; j++) {
            uint js = j << s->lg;
            uint need = min(e, js + (1u << s->lg)) - js;
            if (j == s->prev_j && s->prev_p >= need) continue;
            uint v = progress[s->first + j];
            s->prev_j = j;
            s->prev_p = v;
            if (v < need) return false;
        }
    }
    if (z > s->pos && kept > 0u) {
        uint from = max(a, s->pos) - s->pos, to = z - s->pos;
        if (s->q_op[kept - 1u] + s->q_len[kept - 1u] <= from) return true;
        // First kept match ending past `from` (binary search), then: does it start before `to`?
        uint lo = 0u, hi = kept - 1u;
        while (lo < hi) {
            uint mid = (lo + hi) >> 1;
            if (s->q_op[mid] + s->q_len[mid] > from) hi = mid; else lo = mid + 1u;
        }
        if (s->q_op[lo] < to) return false;
    }
    return true;
}

// Plans the group's next copy (work-item 0). Every path leaves a job; `j->mode == M_EXIT` ends the group.
inline void step(__local State *s, __local Job *j, const __global uchar *in, const __global uint *desc,
                 volatile __global uint *progress, __global uint *status, volatile __global uint *ticket,
                 uint nsub) {
    if (s->pub_pending) {  // every work-item fenced its writes at the end of the last iteration
        progress[s->k] = s->pub_val;
        s->published = s->pub_val;
        s->pub_pending = 0u;
    }
    j->lit_len = 0u;
    j->m_len = 0u;
    j->fence = 0u;
    uint mode = j->mode;
    if (mode == M_NEW) {
        uint k = atomic_inc(ticket);
        if (k >= nsub) { j->mode = M_EXIT; return; }
        const __global uint *d = desc + 8u * k;
        s->k = k; s->in = d[D_IN]; s->in_len = d[D_INLEN]; s->out = d[D_OUT]; s->pos = d[D_POS];
        s->len = d[D_LEN]; s->first = d[D_FIRST]; s->lg = d[D_LOG];
        s->ip = 0u; s->op = 0u; s->n = 0u; s->published = 0u; s->prev_j = DONE;
        mode = M_WALK;
    }
    uint code = ST_OK;
    if (mode == M_WALK) {
        const __global uchar *src = in + s->in;
        uint ip = s->ip, op = s->op, in_len = s->in_len, len = s->len;
        if (ip >= in_len) {
            if (op != len) code = ST_SHORT;
            mode = M_RETRY;
            s->i = 0u; s->kept = 0u; s->done = 0u;
        } else {
            uint t = src[ip++];
            uint lit = t >> 4;
            if (lit == 15u) lit = read_ext(src, in_len, &ip, lit, &code);
            if (code == ST_OK && lit > in_len - ip) code = ST_LIT_PAST_INPUT;
            if (code == ST_OK && lit > len - op) code = ST_OVERRUN;
            if (code == ST_OK) {
                j->lit_src = s->in + ip;
                j->lit_dst = s->out + op;
                j->lit_len = lit;
                ip += lit;
                op += lit;
                if (ip < in_len) {
                    uint off = 0u, ml = 0u;
                    if (in_len - ip < 3u) code = ST_TRUNC_OFF;
                    if (code == ST_OK) {
                        off = src[ip] | ((uint)src[ip + 1u] << 8) | ((uint)src[ip + 2u] << 16);
                        ip += 3u;
                        ml = t & 15u;
                        if (ml == 15u) ml = read_ext(src, in_len, &ip, ml, &code);
                        ml += 4u;
                    }
                    if (code == ST_OK && (off == 0u || off > s->pos + op || ml > len - op))
                        code = ST_BAD_MATCH;
                    if (code == ST_OK) {
                        // Literals of this sequence are copied in the same job, before the match.
                        if (ready(s, progress, op, off, ml, s->n)) {
                            j->m_dst = s->out + op;
                            j->m_off = off;
                            j->m_len = ml;
                        } else {
                            uint n = s->n;
                            s->q_op[n] = op; s->q_off[n] = off; s->q_len[n] = ml;
                            s->n = n + 1u;
                            if (n + 1u == QCAP) { mode = M_DRAIN; s->i = 0u; s->kept = 0u; s->done = 0u; }
                        }
                        op += ml;
                    }
                }
                s->ip = ip;
                s->op = op;
            }
        }
    }
    if (code == ST_OK && (mode == M_DRAIN || mode == M_RETRY)) {
        // One retry step: skip to the next ready set-aside match (or to the end of the pass).
        uint n = s->n, i = s->i, kept = s->kept;
        bool found = false;
        while (i < n && !found) {
            uint qo = s->q_op[i], qf = s->q_off[i], ql = s->q_len[i];
            if (ready(s, progress, qo, qf, ql, kept)) {
                j->m_dst = s->out + qo;
                j->m_off = qf;
                j->m_len = ql;
                s->done++;
                found = true;
            } else {
                s->q_op[kept] = qo; s->q_off[kept] = qf; s->q_len[kept] = ql;
                kept++;
            }
            i++;
        }
        s->i = i;
        s->kept = kept;
        if (!found) {
            // End of a pass: the queue is what was kept.
            s->n = kept;
            bool idle = s->done == 0u;
            s->i = 0u; s->kept = 0u; s->done = 0u;
            if (mode == M_DRAIN && kept < QCAP) mode = M_WALK;
            if (mode == M_RETRY && kept == 0u) {
                // Complete: publish DONE after this iteration's fence.
                status[s->k] = ST_OK;
                s->pub_pending = 1u; s->pub_val = DONE; j->fence = 1u;
                j->mode = M_NEW;
                return;
            }
            if (idle) {
                // Waiting on other sub-blocks: make sure they can see how far this one is.
                uint v = s->q_op[0];
                if (v > s->published) { s->pub_pending = 1u; s->pub_val = v; j->fence = 1u; }
            }
        }
    }
    if (code != ST_OK) {
        status[s->k] = code;
        s->pub_pending = 1u; s->pub_val = DONE; j->fence = 1u;
        j->mode = M_NEW;
        return;
    }
    // Publish now and then while walking, so groups waiting on this one see it move.
    uint v = s->n > 0u ? s->q_op[0] : s->op;
    if (!s->pub_pending && v >= s->published + PUB) { s->pub_pending = 1u; s->pub_val = v; j->fence = 1u; }
    j->mode = mode;
}

__kernel __attribute__((reqd_work_group_size(W, 1, 1)))
void lz3sb_decode(const __global uchar *in, const __global uint *desc, __global uchar *out,
                  volatile __global uint *progress, __global uint *status,
                  volatile __global uint *ticket, uint nsub) {
    __local State s;
    __local Job j;
    uint lid = get_local_id(0);
    if (lid == 0) { j.mode = M_NEW; s.pub_pending = 0u; }
    for (;;) {
        BARRIER(CLK_LOCAL_MEM_FENCE);
        if (lid == 0) step(&s, &j, in, desc, progress, status, ticket, nsub);
        BARRIER(CLK_LOCAL_MEM_FENCE);
        if (j.mode == M_EXIT) return;
        // Literals, then (after a barrier: the match may read them) the match.
        uint n = j.lit_len;
        const __global uchar *ls = in + j.lit_src;
        __global uchar *ld = out + j.lit_dst;
        for (uint i = lid; i < n; i += W) ld[i] = ls[i];
        BARRIER(CLK_GLOBAL_MEM_FENCE);
        n = j.m_len;
        uint off = j.m_off;
        __global uchar *d = out + j.m_dst;
        const __global uchar *sp = d - off;
        if (off >= n) {
            uint i = lid;
            for (; i + 3u * W < n; i += 4u * W) {
                uint a = ldv(sp + i), b = ldv(sp + i + W), c = ldv(sp + i + 2u * W), e = ldv(sp + i + 3u * W);
                d[i] = (uchar)a; d[i + W] = (uchar)b; d[i + 2u * W] = (uchar)c; d[i + 3u * W] = (uchar)e;
            }
            for (; i < n; i += W) d[i] = (uchar)ldv(sp + i);
        } else {
            for (uint i = lid; i < n; i += W) d[i] = (uchar)ldv(sp + i % off);
        }
        if (j.fence) FENCE();
        BARRIER(CLK_GLOBAL_MEM_FENCE);
    }
}
