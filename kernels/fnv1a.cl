// FNV-1a 64 of each buffer: one work-item per buffer (the hash is a serial chain, so parallelism comes
// from the batch). Buffers start at 8-byte aligned offsets; whole 8-byte words are loaded at once.

#define FNV_OFFSET 0xcbf29ce484222325UL
#define FNV_PRIME 0x100000001b3UL

__kernel void fnv1a64(const __global uchar *in, const __global ulong *off,
                      const __global ulong *len, __global ulong *out, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    const __global uchar *p = in + off[i];
    const __global ulong *w = (const __global ulong *)p;  // off[i] % 8 == 0
    ulong n = len[i];
    ulong h = FNV_OFFSET;
    ulong words = n / 8;
    for (ulong k = 0; k < words; k++) {
#ifdef __ENDIAN_LITTLE__
        ulong x = w[k];
        for (uint b = 0; b < 8; b++) { h ^= (x >> (8 * b)) & 0xffUL; h *= FNV_PRIME; }
#else
        for (uint b = 0; b < 8; b++) { h ^= p[k * 8 + b]; h *= FNV_PRIME; }
#endif
    }
    for (ulong k = words * 8; k < n; k++) { h ^= p[k]; h *= FNV_PRIME; }
    out[i] = h;
}
