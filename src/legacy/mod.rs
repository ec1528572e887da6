//! Reader for archives written by the Python CL_Compressor (GPU_IDX1/2/3).
//! PLACEHOLDER: not written yet.
