// tv_denoise on the CPU: skimage's Chambolle iteration, one (image, channel) plane per
// task. Planes of up to kFlatArea pixels run as two flat loops over the whole plane per
// iteration (below). Larger planes take ONE streaming pass over the dual field: row y+1 of
// u = f - div p is formed into a two-row ring just before row y of p is updated from
// rows y and y+1 of u, so u never exists as a full plane. The plane's f, p_y, p_x
// (3 H W floats: 12 KB for 32x32, 600 KB for 224x224) stay in the core's cache across
// iterations; the row loops are vectorised (AVX2 when the CPU has it, see simd.h).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../simd.h"
#include "../tv_denoise.h"

namespace orthocore {
namespace {

// u[x] = f[x] + d[x], d = -div p, for one row; py_up is row y-1 of p_y (nullptr at y = 0).
template <typename acc_t>
ORTHOCORE_ALWAYS_INLINE void primal_row(const acc_t* f, const acc_t* py, const acc_t* px, const acc_t* py_up,
                                        int64_t width, acc_t* u) {
  if (py_up != nullptr) {
#pragma omp simd
    for (int64_t x = 0; x < width; ++x) u[x] = -(py[x] + px[x]) + py_up[x];
  } else {
#pragma omp simd
    for (int64_t x = 0; x < width; ++x) u[x] = -(py[x] + px[x]);
  }
#pragma omp simd
  for (int64_t x = 1; x < width; ++x) u[x] += px[x - 1];
#pragma omp simd
  for (int64_t x = 0; x < width; ++x) u[x] = f[x] + u[x];
}

// p <- (p - tau grad u) / (1 + tau/weight |grad u|) for one row; u_down is row y+1 of u
// (nullptr on the last row, where the vertical difference is zero). One division per
// pixel, by the reciprocal: divisions and the square root bound this loop.
template <typename acc_t>
ORTHOCORE_ALWAYS_INLINE void dual_row(const acc_t* u, const acc_t* u_down, int64_t width, acc_t tau,
                                      acc_t tau_over_weight, acc_t* py, acc_t* px) {
  const int64_t last = width - 1;
  if (u_down != nullptr) {
#pragma omp simd
    for (int64_t x = 0; x < last; ++x) {
      const acc_t gy = u_down[x] - u[x];
      const acc_t gx = u[x + 1] - u[x];
      const acc_t inv_scale = acc_t(1) / (acc_t(1) + tau_over_weight * std::sqrt(gy * gy + gx * gx));
      py[x] = (py[x] - tau * gy) * inv_scale;
      px[x] = (px[x] - tau * gx) * inv_scale;
    }
    const acc_t gy = u_down[last] - u[last];
    const acc_t scale = acc_t(1) + tau_over_weight * std::sqrt(gy * gy);
    py[last] = (py[last] - tau * gy) / scale;
    px[last] = px[last] / scale;
  } else {
#pragma omp simd
    for (int64_t x = 0; x < last; ++x) {
      const acc_t gx = u[x + 1] - u[x];
      const acc_t inv_scale = acc_t(1) / (acc_t(1) + tau_over_weight * std::sqrt(gx * gx));
      py[x] = py[x] * inv_scale;
      px[x] = (px[x] - tau * gx) * inv_scale;
    }
    // The last pixel has no forward neighbour: its gradient and update are zero.
  }
}

// Planes of at most kFlatArea pixels (f, p, u and a mask: 20 KB of float32 at 32x32)
// stay in L1; for them per-row loop overhead costs more than the arithmetic of short
// rows, so each iteration is two loops over the whole flattened plane instead.
constexpr int64_t kFlatArea = 64 * 64;

// Work values per plane: the row-streaming solver's and the flat solver's, whichever
// the plane takes.
inline int64_t tv_work_size(int64_t height, int64_t width) {
  const int64_t area = height * width;
  return area <= kFlatArea ? 4 * area + 1 : 3 * area + 2 * width;
}

// The flat solver's has_right mask (1 where a pixel has a right neighbour, else 0): it
// depends on the shape only, so one is built per call and shared by every plane.
template <typename acc_t>
std::vector<acc_t> right_neighbour_mask(int64_t height, int64_t width) {
  const int64_t area = height * width;
  if (area > kFlatArea) return {};
  std::vector<acc_t> has_right(area, acc_t(1));
  for (int64_t i = width - 1; i < area; i += width) has_right[i] = acc_t(0);
  return has_right;
}

// u = f - div p over a flattened plane. px is 0 in the last column, so px[i - 1] at
// the start of a row adds 0; the order of additions is primal_row's.
template <typename acc_t>
ORTHOCORE_ALWAYS_INLINE void primal_flat(const acc_t* f, const acc_t* py, const acc_t* px, int64_t area,
                                         int64_t width, acc_t* u) {
  const int64_t first_row = std::min(width, area);
  u[0] = f[0] + -(py[0] + px[0]);
#pragma omp simd
  for (int64_t i = 1; i < first_row; ++i) u[i] = f[i] + (-(py[i] + px[i]) + px[i - 1]);
#pragma omp simd
  for (int64_t i = first_row; i < area; ++i) u[i] = f[i] + ((-(py[i] + px[i]) + py[i - width]) + px[i - 1]);
}

// dual_row over a flattened plane: has_right[i] is 1 where pixel i has a right
// neighbour, else 0 (u[area] is a finite pad, so u[i + 1] is always readable).
template <typename acc_t>
ORTHOCORE_ALWAYS_INLINE void dual_flat(const acc_t* u, const acc_t* has_right, int64_t area, int64_t width,
                                       acc_t tau, acc_t tau_over_weight, acc_t* py, acc_t* px) {
  const int64_t with_down = std::max<int64_t>(0, area - width);
#pragma omp simd
  for (int64_t i = 0; i < with_down; ++i) {
    const acc_t gy = u[i + width] - u[i];
    const acc_t gx = (u[i + 1] - u[i]) * has_right[i];
    const acc_t inv_scale = acc_t(1) / (acc_t(1) + tau_over_weight * std::sqrt(gy * gy + gx * gx));
    py[i] = (py[i] - tau * gy) * inv_scale;
    px[i] = (px[i] - tau * gx) * inv_scale;
  }
#pragma omp simd
  for (int64_t i = with_down; i < area; ++i) {
    const acc_t gx = (u[i + 1] - u[i]) * has_right[i];
    const acc_t inv_scale = acc_t(1) / (acc_t(1) + tau_over_weight * std::sqrt(gx * gx));
    py[i] = py[i] * inv_scale;
    px[i] = (px[i] - tau * gx) * inv_scale;
  }
}

// All iterations on one plane. work holds tv_work_size(height, width) values; has_right
// is right_neighbour_mask(height, width).
template <typename scalar_t, typename acc_t>
ORTHOCORE_ALWAYS_INLINE void solve_plane(const scalar_t* in, scalar_t* out, int64_t height, int64_t width,
                                         acc_t weight, int64_t iters, const acc_t* has_right, acc_t* work) {
  const int64_t area = height * width;
  acc_t* f = work;
  acc_t* py = f + area;
  acc_t* px = py + area;
  for (int64_t i = 0; i < area; ++i) f[i] = static_cast<acc_t>(in[i]);
  std::fill(py, py + 2 * area, acc_t(0));
  const acc_t tau = static_cast<acc_t>(kTvTau);
  const acc_t tau_over_weight = tau / weight;
  if (area <= kFlatArea) {
    acc_t* u = px + area;  // area + 1 values, the last a pad
    u[area] = acc_t(0);
    for (int64_t step = 0; step + 1 < iters; ++step) {
      primal_flat(f, py, px, area, width, u);
      dual_flat(u, has_right, area, width, tau, tau_over_weight, py, px);
    }
    primal_flat(f, py, px, area, width, u);
    for (int64_t i = 0; i < area; ++i) out[i] = static_cast<scalar_t>(u[i]);
    return;
  }
  acc_t* ring = px + area;  // rows of u: ring + (y % 2) * width
  auto u_row = [&](int64_t y) { return ring + (y % 2) * width; };
  for (int64_t step = 0; step + 1 < iters; ++step) {
    primal_row(f, py, px, static_cast<const acc_t*>(nullptr), width, u_row(0));
    for (int64_t y = 0; y < height; ++y) {
      const bool has_down = y + 1 < height;
      if (has_down) {
        const int64_t o = (y + 1) * width;
        primal_row(f + o, py + o, px + o, py + o - width, width, u_row(y + 1));
      }
      dual_row(u_row(y), has_down ? u_row(y + 1) : nullptr, width, tau, tau_over_weight, py + y * width,
               px + y * width);
    }
  }
  for (int64_t y = 0; y < height; ++y) {
    const int64_t o = y * width;
    primal_row(f + o, py + o, px + o, y > 0 ? py + o - width : nullptr, width, ring);
    for (int64_t x = 0; x < width; ++x) out[o + x] = static_cast<scalar_t>(ring[x]);
  }
}

template <typename scalar_t, typename acc_t>
ORTHOCORE_TARGET_AVX2 void solve_plane_avx2(const scalar_t* in, scalar_t* out, int64_t height, int64_t width,
                                            acc_t weight, int64_t iters, const acc_t* has_right, acc_t* work) {
  solve_plane<scalar_t, acc_t>(in, out, height, width, weight, iters, has_right, work);
}

template <typename scalar_t, typename acc_t>
ORTHOCORE_TARGET_BASE void solve_plane_base(const scalar_t* in, scalar_t* out, int64_t height, int64_t width,
                                            acc_t weight, int64_t iters, const acc_t* has_right, acc_t* work) {
  solve_plane<scalar_t, acc_t>(in, out, height, width, weight, iters, has_right, work);
}

at::Tensor tv_denoise_fwd_cpu(const at::Tensor& x_in, double weight, int64_t iters) {
  check_tv_denoise_inputs(x_in, weight, iters);
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty_like(x);
  const int64_t height = x.size(2), width = x.size(3);
  const int64_t planes = x.size(0) * x.size(1), area = height * width;
  if (planes == 0 || area == 0) return out;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "tv_denoise_fwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto solve = cpu_has_avx2() ? solve_plane_avx2<scalar_t, acc_t> : solve_plane_base<scalar_t, acc_t>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    const std::vector<acc_t> has_right = right_neighbour_mask<acc_t>(height, width);
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> work(tv_work_size(height, width));
      for (int64_t plane = begin; plane < end; ++plane) {
        solve(in + plane * area, dst + plane * area, height, width, static_cast<acc_t>(weight), iters,
              has_right.data(), work.data());
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) { m.impl("tv_denoise_fwd", &tv_denoise_fwd_cpu); }

}  // namespace orthocore
