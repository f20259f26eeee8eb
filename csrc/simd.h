// Runtime choice of instruction set for the CPU kernels' hot loops.
//
// setup.py compiles for the baseline x86-64 (SSE2). A kernel writes its per-plane work
// once as an ORTHOCORE_ALWAYS_INLINE template and instantiates it twice: inside an
// ORTHOCORE_TARGET_AVX2 wrapper and a plain one; cpu_has_avx2() picks at run time. The
// compiler then vectorises the same loops 8 floats wide where the CPU allows it (setup.py
// passes -fno-math-errno so that sqrt vectorises; keep the loops free of branches and of
// calls other than sqrt/abs).
//
// A loop that is a plain function (or function template) can instead be marked
// ORTHOCORE_SIMD_CLONES: the compiler emits an AVX2 clone beside the baseline one and the
// loader picks the right one for the running processor (function multi-versioning).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ORTHOCORE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ORTHOCORE_SIMD_CLONES
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define ORTHOCORE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define ORTHOCORE_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define ORTHOCORE_TARGET_BASE
#define ORTHOCORE_ALWAYS_INLINE inline __attribute__((always_inline))
namespace orthocore {
inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
inline bool cpu_has_avx512() {
  static const bool has = cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw");
  return has;
}
}  // namespace orthocore
#else
#define ORTHOCORE_TARGET_AVX2
#define ORTHOCORE_TARGET_AVX512
#define ORTHOCORE_TARGET_BASE
#define ORTHOCORE_ALWAYS_INLINE inline
namespace orthocore {
inline bool cpu_has_avx2() { return false; }
inline bool cpu_has_avx512() { return false; }
}  // namespace orthocore
#endif

namespace orthocore {
// The widest of a kernel's three instantiations (ORTHOCORE_TARGET_AVX512, _AVX2 and _BASE
// wrappers of one template) that the running CPU can execute.
template <typename Function>
Function widest_variant(Function avx512, Function avx2, Function base) {
  return cpu_has_avx512() ? avx512 : cpu_has_avx2() ? avx2 : base;
}
}  // namespace orthocore
