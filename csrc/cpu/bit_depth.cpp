// bit_depth on the CPU: rint(x * levels) / levels elementwise, levels = 2^bits - 1,
// in float64 (as numpy computes ART's FeatureSqueezing), cast back to x's dtype.
// The Python wrapper checks that x lies in [0, 1], so x * levels is in [0, 255].
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

namespace orthocore {
namespace {

// Round half to even of 0 <= v < 2^52: adding and removing 2^52 leaves the nearest
// integer under the default rounding mode; unlike std::nearbyint it vectorises on any
// x86-64. (No -ffast-math here, so the compiler keeps the pair.)
inline double rint_nonnegative(double v) {
  constexpr double shifter = 4503599627370496.0;
  return (v + shifter) - shifter;
}

template <typename scalar_t>
void reduce_range(const scalar_t* src, double levels, int64_t n, scalar_t* dst) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<scalar_t>(rint_nonnegative(static_cast<double>(src[i]) * levels) / levels);
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
    const double levels = static_cast<double>((1 << bits) - 1);
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
