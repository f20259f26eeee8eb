// Function multi-versioning for the CPU kernels' inner loops: on x86-64 the compiler
// emits an AVX2 clone beside the baseline (SSE2) one and the loader picks the right one
// for the running processor, so one wheel is both portable and fast.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ORTHOCORE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ORTHOCORE_SIMD_CLONES
#endif
