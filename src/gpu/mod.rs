//! OpenCL backend: batched LZ_EXT3 compression, FNV-1a 64 and batched decompression.
//! PLACEHOLDER: not written yet; every call reports that no GPU is available.
