// LZ_EXT3_SB decoder (codec 3, docs/FORMAT.md 2.2): one work-group of W work-items (W = 32: one warp on
// NVIDIA; 1 on CPU devices) per sub-block, every sub-block of every frame of the launch at once.
// docs/GPU.md has the design and the numbers.
//
// Work-groups take sub-blocks in order from a counter (`ticket`). Work-item 0 runs a small state machine
// (below, `step`): it parses the sub-block's sequences and decides, and the whole group then carries out
// the copy it chose (a literal run, then a match), so the loop has one shape with barriers only at its
// top level. A match is copied at once when every byte it reads is final, otherwise it is set aside in a
// queue (in global memory, one slot per 4 input bytes: never full) and the walk goes on. A byte of an
// earlier sub-block is final below that sub-block's published `progress`; a byte of the group's own
// sub-block is final if it lies before the first set-aside match or after the last one. The sub-block's
// own progress is its start up to its first set-aside match (the queue's head), so the head is what
// others wait on: before every sequence it walks, the group copies the head if it has become ready (the
// head's own bytes are all final, so only its earlier sub-blocks matter), and publishes the new
// progress. After its walk the group copies the queue in order, waiting on each head. Sub-blocks are
// taken in order, so the lowest unfinished one waits on nothing unfinished: every launch ends, whatever
// the bytes. A sub-block that fails publishes itself complete (the host refuses its frame from its
// status), so nothing waits on it forever.
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
#ifndef PUB
#define PUB 1024u
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
#define D_Q 7      // index of its first queue slot in `queue` (in_len / 4 + 1 slots of 3 uints)

// Work-item 0's modes.
#define M_NEW 0u    // take the next sub-block
#define M_WALK 1u   // copy the head if ready, else parse the next sequence
#define M_RETRY 3u  // the walk is over: copy the queue in order
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
    uint k, in, in_len, out, pos, len, first, lg, q;  // the sub-block (descriptor fields)
    uint ip, op;                                      // walk position: input, output (in the sub-block)
    uint head, tail;                                  // set-aside matches: queue slots [head, tail)
    uint last_end;                                    // end of the last set-aside match (in the sub-block)
    uint published, pub_val, pub_pending;             // progress published; one to publish next step
    uint prev_j, prev_p;                              // last progress read (earlier sub-block, value)
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

// Whether the bytes of earlier sub-blocks that a match at position p (in the sub-block) with offset off
// and length ml reads are final (below their published progress).
inline bool far_ready(__local State *s, volatile __global uint *progress, uint p, uint off, uint ml) {
    uint a = s->pos + p - off;  // frame positions of the bytes it reads: [a, z)
    if (a >= s->pos) return true;
    uint e = min(a + min(off, ml), s->pos);
    for (uint j = a >> s->lg; j <= (e - 1u) >> s->lg; j++) {
        uint js = j << s->lg;
        uint need = min(e, js + (1u << s->lg)) - js;
        if (j == s->prev_j && s->prev_p >= need) continue;
        uint v = progress[s->first + j];
        s->prev_j = j;
        s->prev_p = v;
        if (v < need) return false;
    }
    return true;
}

// Plans the group's next copy (work-item 0). Every path leaves a job; `j->mode == M_EXIT` ends the group.
inline void step(__local State *s, __local Job *j, const __global uchar *in, const __global uint *desc,
                 volatile __global uint *progress, __global uint *status, volatile __global uint *ticket,
                 __global uint *queue, uint nsub) {
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
        s->len = d[D_LEN]; s->first = d[D_FIRST]; s->lg = d[D_LOG]; s->q = 3u * d[D_Q];
        s->ip = 0u; s->op = 0u; s->head = 0u; s->tail = 0u; s->last_end = 0u;
        s->published = 0u; s->prev_j = DONE;
        mode = M_WALK;
    }
    __global uint *q = queue + s->q;
    uint code = ST_OK;
    bool busy = false;  // a copy was planned
    // The head of the queue first: every group waiting on this one waits on it.
    bool moved = false, waiting = false;
    if (s->head < s->tail) {
        uint h = 3u * s->head;
        uint qo = q[h], qf = q[h + 1u], ql = q[h + 2u];
        if (far_ready(s, progress, qo, qf, ql)) {
            j->m_dst = s->out + qo;
            j->m_off = qf;
            j->m_len = ql;
            s->head++;
            busy = true;
            moved = true;
        } else {
            waiting = true;
            busy = mode == M_RETRY;  // nothing else to do: wait (the loop comes back here)
        }
    }
    if (!busy && mode == M_WALK) {
        const __global uchar *src = in + s->in;
        uint ip = s->ip, op = s->op, in_len = s->in_len, len = s->len;
        if (ip >= in_len) {
            if (op != len) code = ST_SHORT;
            mode = M_RETRY;
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
                        // Own bytes it reads, [max(a, 0), z) in the sub-block: final when they lie
                        // before the head or after the last set-aside match (this sequence's literals
                        // are copied first, in the same job).
                        int a = (int)op - (int)off;
                        int z = a + (int)min(off, ml);
                        bool own = z <= 0 || s->head == s->tail || max(a, 0) >= (int)s->last_end
                                   || z <= (int)q[3u * s->head];
                        if (own && far_ready(s, progress, op, off, ml)) {
                            j->m_dst = s->out + op;
                            j->m_off = off;
                            j->m_len = ml;
                        } else {
                            uint t3 = 3u * s->tail;
                            q[t3] = op; q[t3 + 1u] = off; q[t3 + 2u] = ml;
                            s->tail++;
                            s->last_end = op + ml;
                        }
                        op += ml;
                    }
                }
                s->ip = ip;
                s->op = op;
            }
        }
    }
    if (code != ST_OK) {
        status[s->k] = code;
        s->pub_pending = 1u; s->pub_val = DONE; j->fence = 1u;
        j->mode = M_NEW;
        return;
    }
    if (mode == M_RETRY && s->head == s->tail && j->m_len == 0u) {
        // Complete: publish DONE after this iteration's fence.
        status[s->k] = ST_OK;
        s->pub_pending = 1u; s->pub_val = DONE; j->fence = 1u;
        j->mode = M_NEW;
        return;
    }
    // Progress: up to the head (after this job's copy), or to the walk. Published when the head moved,
    // before waiting, and every PUB bytes of walk, so that groups waiting on this one see it move.
    uint v = s->head < s->tail ? q[3u * s->head] : s->op;
    if (v > s->published && (moved || waiting || v >= s->published + PUB)) {
        s->pub_pending = 1u; s->pub_val = v; j->fence = 1u;
    }
    j->mode = mode;
}

__kernel __attribute__((reqd_work_group_size(W, 1, 1)))
void lz3sb_decode(const __global uchar *in, const __global uint *desc, __global uchar *out,
                  volatile __global uint *progress, __global uint *status,
                  volatile __global uint *ticket, __global uint *queue, uint nsub) {
    __local State s;
    __local Job j;
    uint lid = get_local_id(0);
    if (lid == 0) { j.mode = M_NEW; s.pub_pending = 0u; }
    for (;;) {
        BARRIER(CLK_LOCAL_MEM_FENCE);
        if (lid == 0) step(&s, &j, in, desc, progress, status, ticket, queue, nsub);
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
