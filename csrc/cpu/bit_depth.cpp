// bit_depth on the CPU: rint(x * levels) / levels elementwise, levels = 2^bits - 1, in
// float32 (float64 for float64 inputs). Inputs are checked to lie in [0, 1] by the
// Python wrapper, so x * levels is in [0, 255].
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

namespace orthocore {
namespace {

// Round half to even of 0 <= v < 2^23 (float) or 2^52 (double): adding and removing
// 2^23 (2^52) leaves the nearest integer under the default rounding mode; unlike
// std::nearbyint it vectorises on any x86-64. (No -ffast-math here: the pair is kept.)
template <typename acc_t>
inline acc_t rint_nonnegative(acc_t v) {
  constexpr acc_t shifter = sizeof(acc_t) == 4 ? acc_t(8388608.0) : acc_t(4503599627370496.0);
  return (v + shifter) - shifter;
}

template <typename scalar_t, typename acc_t>
void reduce_range(const scalar_t* src, acc_t levels, int64_t n, scalar_t* dst) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<scalar_t>(rint_nonnegative(static_cast<acc_t>(src[i]) * levels) / levels);
  }
}

at::Tensor bit_depth_reduce_cpu(const at::Tensor& x_in, int64_t bits) {
  TORCH_CHECK(at::isFloatingType(x_in.scalar_type()), "bit_depth_reduce: x must be floating, got ",
              x_in.scalar_type());
  TORCH_CHECK(bits >= 1 && bits <= 8, "bit_depth_reduce: bits must be in 1..8, got ", bits);
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty_like(x);
  const int64_t n = x.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bit_depth_reduce_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t levels = static_cast<acc_t>((1 << bits) - 1);
    const scalar_t* src = x.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
      reduce_range(src + begin, levels, end - begin, dst + begin);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) { m.impl("bit_depth_reduce", &bit_depth_reduce_cpu); }

}  // namespace orthocore
