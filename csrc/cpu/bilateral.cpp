// bilateral on the CPU: one (image, output row) per task. For 1- and 3-channel images the
// row is cut into blocks of 16 pixels whose sums stay in registers while every tap of the
// circular window is walked (L1 colour distance summed over channels, exp by a
// polynomial the compiler vectorises), the row's last block partial (it reads into slack
// after the window and stores only its own pixels: rows of 8 or 28 pixels run at the speed
// of rows of 16 or 32); other channel counts take one vectorised pass per tap. Nothing of
// size k^2 * image is ever stored:
// each task first copies the 2r + 1 input rows it needs, borders reflected (reflect-101),
// into a small per-thread window, so the inner loops carry no border logic.
//
// The backward (the vector-Jacobian product) takes one image per task: it recomputes each
// output pixel's weights, then scatters the gradient into a reflect-padded copy of the
// image (the neighbours' share: direct and through the colour weight) and into the centre
// pixel (through the colour distance), and folds the padding back onto the pixels it
// reflects.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../bilateral.h"
#include "../simd.h"

namespace orthocore {
namespace {

// exp(x) for x <= 0 to ~2e-7 relative: 2^k * 2^f with k = round(x log2 e), |f| <= 1/2,
// and a degree-6 series for 2^f. Branch- and call-free so that the loops around it
// vectorise (floor and fmax do not); results below 2^-126 come out as about 2^-126,
// which no weighted sum here can tell from zero (the centre tap weighs 1).
ORTHOCORE_ALWAYS_INLINE float exp_nonpositive(float x) {
  const float t = x * 1.44269504088896341f;
  const float k = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick)
  const float f = t - k;
  float p = 1.54035304e-4f;
  p = p * f + 1.33335581e-3f;
  p = p * f + 9.61812911e-3f;
  p = p * f + 5.55041087e-2f;
  p = p * f + 2.40226507e-1f;
  p = p * f + 6.93147181e-1f;
  p = p * f + 1.0f;
  int32_t exponent = static_cast<int32_t>(k);
  exponent = exponent < -126 ? -126 : exponent;
  return p * __builtin_bit_cast(float, (exponent + 127) << 23);
}

ORTHOCORE_ALWAYS_INLINE double exp_nonpositive(double x) { return std::exp(x); }

// A task's window: per channel, 2r + 1 reflected rows of pitch W + 2r around the output row.
struct RowGeometry {
  int64_t channels;
  int64_t pitch;         // W + 2r
  int64_t window_plane;  // (2r + 1) * pitch: channel stride of the window
  int64_t width;         // W
  int64_t radius;        // r
  int64_t out_plane;     // H * W: channel stride of the output
};

// Pixels per block of the fast path: two AVX2 registers per accumulator (a row's last
// block takes half as many when that covers it).
constexpr int64_t kBlock = 16;

// N output pixels of an image with CH (1 or 3) channels, all taps walked with the
// accumulators held in registers: per tap and pixel, CH loads and ~25 flops. The first
// `count` are stored: a row's last block may reach past the row into the window's slack,
// whose pixels are computed from finite values and dropped.
template <int CH, int64_t N, typename scalar_t, typename acc_t>
ORTHOCORE_ALWAYS_INLINE void filter_block(const scalar_t* centre, const RowGeometry& g, int64_t plane,
                                          const std::vector<BilateralTap>& taps, acc_t color_coeff, scalar_t* out,
                                          int64_t out_plane, int64_t count) {
  acc_t middle[CH][N], sums[CH][N] = {}, total[N] = {};
  for (int c = 0; c < CH; ++c) {
    for (int64_t l = 0; l < N; ++l) middle[c][l] = static_cast<acc_t>(centre[c * plane + l]);
  }
  for (const BilateralTap& tap : taps) {
    const scalar_t* neighbour = centre + tap.dy * g.pitch + tap.dx;
    const acc_t tap_weight = static_cast<acc_t>(tap.weight);
#pragma omp simd
    for (int64_t l = 0; l < N; ++l) {
      acc_t value[CH];
      acc_t distance = 0;
      for (int c = 0; c < CH; ++c) {
        value[c] = static_cast<acc_t>(neighbour[c * plane + l]);
        distance += std::abs(value[c] - middle[c][l]);
      }
      const acc_t w = tap_weight * exp_nonpositive(color_coeff * distance * distance);
      total[l] += w;
      for (int c = 0; c < CH; ++c) sums[c][l] += w * value[c];
    }
  }
  scalar_t result[CH][N];  // a fixed-length loop here keeps the sums in registers
  for (int c = 0; c < CH; ++c) {
    for (int64_t l = 0; l < N; ++l) result[c][l] = static_cast<scalar_t>(sums[c][l] / total[l]);
  }
  for (int c = 0; c < CH; ++c) std::copy(result[c], result[c] + count, out + c * out_plane);
}

// Output pixels [begin, end) of one row for any number of channels, one pass over the
// row per tap and channel. scratch holds (channels + 2) * width accumulation-type values.
template <typename scalar_t, typename acc_t>
ORTHOCORE_ALWAYS_INLINE void filter_span(const scalar_t* centre, const RowGeometry& g, int64_t plane,
                                         const std::vector<BilateralTap>& taps, acc_t color_coeff, scalar_t* out,
                                         int64_t out_plane, int64_t length, acc_t* scratch) {
  acc_t* weights = scratch;
  acc_t* total = weights + length;
  acc_t* sums = total + length;  // (channels, length)
  std::fill(total, total + (g.channels + 1) * length, acc_t(0));
  for (const BilateralTap& tap : taps) {
    const scalar_t* neighbour = centre + tap.dy * g.pitch + tap.dx;
    std::fill(weights, weights + length, acc_t(0));
    for (int64_t c = 0; c < g.channels; ++c) {
      const scalar_t* a = neighbour + c * plane;
      const scalar_t* b = centre + c * plane;
#pragma omp simd
      for (int64_t x = 0; x < length; ++x) {
        weights[x] += std::abs(static_cast<acc_t>(a[x]) - static_cast<acc_t>(b[x]));
      }
    }
    const acc_t tap_weight = static_cast<acc_t>(tap.weight);
#pragma omp simd
    for (int64_t x = 0; x < length; ++x) {
      const acc_t w = tap_weight * exp_nonpositive(color_coeff * weights[x] * weights[x]);
      weights[x] = w;
      total[x] += w;
    }
    for (int64_t c = 0; c < g.channels; ++c) {
      const scalar_t* a = neighbour + c * plane;
      acc_t* s = sums + c * length;
#pragma omp simd
      for (int64_t x = 0; x < length; ++x) s[x] += weights[x] * static_cast<acc_t>(a[x]);
    }
  }
  for (int64_t c = 0; c < g.channels; ++c) {
    const acc_t* s = sums + c * length;
    scalar_t* o = out + c * out_plane;
#pragma omp simd
    for (int64_t x = 0; x < length; ++x) o[x] = static_cast<scalar_t>(s[x] / total[x]);
  }
}

// One output row from its window: out[c][x] = sum_t w_t(x) in_t[c][x] / sum_t w_t(x).
template <typename scalar_t, typename acc_t>
ORTHOCORE_ALWAYS_INLINE void filter_row(const scalar_t* window, scalar_t* row, const RowGeometry& g,
                                        const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  const int64_t plane = g.window_plane;
  const scalar_t* centre = window + g.radius * g.pitch + g.radius;
  int64_t x = 0;
  if (g.channels == 1 || g.channels == 3) {
    for (; x < g.width; x += kBlock) {  // the last block may be partial (see filter_block)
      const int64_t count = std::min(kBlock, g.width - x);
      const scalar_t* in = centre + x;
      scalar_t* out = row + x;
      if (g.channels == 3 && count > kBlock / 2) {
        filter_block<3, kBlock>(in, g, plane, taps, color_coeff, out, g.out_plane, count);
      } else if (g.channels == 3) {
        filter_block<3, kBlock / 2>(in, g, plane, taps, color_coeff, out, g.out_plane, count);
      } else if (count > kBlock / 2) {
        filter_block<1, kBlock>(in, g, plane, taps, color_coeff, out, g.out_plane, count);
      } else {
        filter_block<1, kBlock / 2>(in, g, plane, taps, color_coeff, out, g.out_plane, count);
      }
    }
  }
  if (x < g.width) filter_span(centre + x, g, plane, taps, color_coeff, row + x, g.out_plane, g.width - x, scratch);
}

template <typename scalar_t, typename acc_t>
ORTHOCORE_TARGET_AVX2 void filter_row_avx2(const scalar_t* window, scalar_t* row, const RowGeometry& g,
    const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  filter_row<scalar_t, acc_t>(window, row, g, taps, color_coeff, scratch);
}

template <typename scalar_t, typename acc_t>
ORTHOCORE_TARGET_AVX512 void filter_row_avx512(const scalar_t* window, scalar_t* row, const RowGeometry& g,
    const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  filter_row<scalar_t, acc_t>(window, row, g, taps, color_coeff, scratch);
}

template <typename scalar_t, typename acc_t>
ORTHOCORE_TARGET_BASE void filter_row_base(const scalar_t* window, scalar_t* row, const RowGeometry& g,
    const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  filter_row<scalar_t, acc_t>(window, row, g, taps, color_coeff, scratch);
}

// Copies rows y - r .. y + r of every channel of one image, columns -r .. W + r - 1,
// reflected at the borders, into the window.
template <typename scalar_t>
void fill_window(const scalar_t* image, int64_t y, int64_t height, const RowGeometry& g,
                 const std::vector<int64_t>& columns, scalar_t* window) {
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t k = 0; k <= 2 * g.radius; ++k) {
      const scalar_t* src = image + (c * height + reflect_101(y - g.radius + k, height)) * g.width;
      scalar_t* dst = window + c * g.window_plane + k * g.pitch;
      if (g.radius < g.width) {
        std::copy(src, src + g.width, dst + g.radius);
        for (int64_t i = 0; i < g.radius; ++i) {
          dst[i] = src[columns[i]];
          dst[g.radius + g.width + i] = src[columns[g.radius + g.width + i]];
        }
      } else {
        for (int64_t i = 0; i < g.pitch; ++i) dst[i] = src[columns[i]];
      }
    }
  }
}

at::Tensor bilateral_fwd_cpu(const at::Tensor& x_in, int64_t radius, double sigma_color, double sigma_space) {
  check_bilateral_inputs(x_in, radius, sigma_color, sigma_space);
  const at::Tensor x = x_in.contiguous();
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  at::Tensor out = at::empty_like(x);
  if (out.numel() == 0) return out;
  const std::vector<BilateralTap> taps = bilateral_taps(radius, sigma_space);
  const int64_t pitch = width + 2 * radius;
  const RowGeometry geometry{channels, pitch, (2 * radius + 1) * pitch, width, radius, height * width};
  std::vector<int64_t> columns(pitch);
  for (int64_t i = 0; i < pitch; ++i) columns[i] = reflect_101(i - radius, width);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bilateral_fwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto filter = widest_variant(filter_row_avx512<scalar_t, acc_t>, filter_row_avx2<scalar_t, acc_t>,
                                       filter_row_base<scalar_t, acc_t>);
    const acc_t color_coeff = static_cast<acc_t>(-0.5 / (sigma_color * sigma_color));
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    const int64_t image_size = channels * height * width;
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, width * int64_t(taps.size())));
    at::parallel_for(0, batch * height, grain, [&](int64_t begin, int64_t end) {
      // kBlock values of zero slack after the window: a row's last block reads past its end
      std::vector<scalar_t> window(channels * geometry.window_plane + kBlock);
      std::vector<acc_t> scratch((channels + 2) * width);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / height, y = task % height;
        fill_window(in + b * image_size, y, height, geometry, columns, window.data());
        filter(window.data(), dst + b * image_size + y * width, geometry, taps, color_coeff, scratch.data());
      }
    });
  });
  return out;
}

// The vector-Jacobian product of one output row. With w_t = s_t exp(k D_t^2),
// D_t = sum_c |n_c - x_c| (n = the neighbour at tap t), W = sum_t w_t and
// out_c = sum_t w_t n_c / W, the upstream gradient g gives dL/dw_t = sum_c g_c (n_c - out_c) / W,
// and
//   dL/dn_c += g_c w_t / W + dL/dw_t * w_t * 2k D_t * sign(n_c - x_c),
//   dL/dx_c -= dL/dw_t * w_t * 2k D_t * sign(n_c - x_c),
// the sign being 0 at 0 as autograd's |.| has it. Each tap is one pass over the row, the
// neighbours of consecutive pixels being consecutive in the padded image, so the loops
// vectorise and no two pixels of a pass write the same place. padded / grad_padded:
// (C, H + 2r, W + 2r), the image and its gradient (channel stride g.window_plane); grad:
// the upstream gradient's row (channel stride g.out_plane); scratch: (2 T + C + 2) * W values.
//
// kWidth > 0 compiles the row's width in: rows that short (the digits' 8 pixels) are a
// few vector instructions per loop, whose cost a runtime trip count and remainder would
// multiply (3.4x the time per pixel of 16-pixel rows); the arithmetic is the same.
template <typename acc_t, typename scalar_t, int64_t kWidth = 0>
ORTHOCORE_ALWAYS_INLINE void backward_row(const acc_t* padded, const scalar_t* grad, acc_t* grad_padded, int64_t y,
                                          const RowGeometry& g, const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  const int64_t width = kWidth > 0 ? kWidth : g.width, taps_count = static_cast<int64_t>(taps.size());
  acc_t* weights = scratch;                         // (T, W)
  acc_t* distances = weights + taps_count * width;  // (T, W)
  acc_t* out = distances + taps_count * width;      // (C, W)
  acc_t* inverse_total = out + g.channels * width;  // (W,)
  acc_t* grad_weight = inverse_total + width;       // (W,)
  const int64_t centre_offset = (y + g.radius) * g.pitch + g.radius;
  std::fill(out, out + g.channels * width, acc_t(0));
  std::fill(inverse_total, inverse_total + width, acc_t(0));
  for (int64_t t = 0; t < taps_count; ++t) {
    const int64_t offset = centre_offset + taps[t].dy * g.pitch + taps[t].dx;
    acc_t* w = weights + t * width;
    acc_t* d = distances + t * width;
    std::fill(d, d + width, acc_t(0));
    for (int64_t c = 0; c < g.channels; ++c) {
      const acc_t* n = padded + c * g.window_plane + offset;
      const acc_t* centre = padded + c * g.window_plane + centre_offset;
#pragma omp simd
      for (int64_t x = 0; x < width; ++x) d[x] += std::abs(n[x] - centre[x]);
    }
    const acc_t tap_weight = static_cast<acc_t>(taps[t].weight);
#pragma omp simd
    for (int64_t x = 0; x < width; ++x) {
      w[x] = tap_weight * exp_nonpositive(color_coeff * d[x] * d[x]);
      inverse_total[x] += w[x];
    }
    for (int64_t c = 0; c < g.channels; ++c) {
      const acc_t* n = padded + c * g.window_plane + offset;
      acc_t* o = out + c * width;
#pragma omp simd
      for (int64_t x = 0; x < width; ++x) o[x] += w[x] * n[x];
    }
  }
#pragma omp simd
  for (int64_t x = 0; x < width; ++x) inverse_total[x] = acc_t(1) / inverse_total[x];
  for (int64_t c = 0; c < g.channels; ++c) {
    acc_t* o = out + c * width;
#pragma omp simd
    for (int64_t x = 0; x < width; ++x) o[x] *= inverse_total[x];
  }
  for (int64_t t = 0; t < taps_count; ++t) {
    const int64_t offset = centre_offset + taps[t].dy * g.pitch + taps[t].dx;
    acc_t* w = weights + t * width;
    const acc_t* d = distances + t * width;
    std::fill(grad_weight, grad_weight + width, acc_t(0));
    for (int64_t c = 0; c < g.channels; ++c) {
      const acc_t* n = padded + c * g.window_plane + offset;
      const acc_t* o = out + c * width;
      const scalar_t* gc = grad + c * g.out_plane;
#pragma omp simd
      for (int64_t x = 0; x < width; ++x) grad_weight[x] += static_cast<acc_t>(gc[x]) * (n[x] - o[x]);
    }
#pragma omp simd
    for (int64_t x = 0; x < width; ++x) {
      w[x] *= inverse_total[x];                                       // now w_t / W
      grad_weight[x] *= w[x] * acc_t(2) * color_coeff * d[x];  // now dL/dD_t
    }
    for (int64_t c = 0; c < g.channels; ++c) {
      const acc_t* n = padded + c * g.window_plane + offset;
      const acc_t* centre = padded + c * g.window_plane + centre_offset;
      acc_t* grad_n = grad_padded + c * g.window_plane + offset;
      acc_t* grad_centre = grad_padded + c * g.window_plane + centre_offset;
      const scalar_t* gc = grad + c * g.out_plane;
#pragma omp simd
      for (int64_t x = 0; x < width; ++x) {
        const acc_t difference = n[x] - centre[x];
        const acc_t through = grad_weight[x] * static_cast<acc_t>((difference > 0) - (difference < 0));
        grad_n[x] += static_cast<acc_t>(gc[x]) * w[x] + through;
        grad_centre[x] -= through;
      }
    }
  }
}

// backward_row with the width compiled in for the datasets' image widths: the digits' 8,
// Fashion-MNIST's 28 and CIFAR-10's 32 pixels; any other width at run time.
template <typename acc_t, typename scalar_t>
ORTHOCORE_ALWAYS_INLINE void backward_row_of_width(const acc_t* padded, const scalar_t* grad, acc_t* grad_padded,
    int64_t y, const RowGeometry& g, const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  switch (g.width) {
    case 8: return backward_row<acc_t, scalar_t, 8>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
    case 28: return backward_row<acc_t, scalar_t, 28>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
    case 32: return backward_row<acc_t, scalar_t, 32>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
    default: return backward_row<acc_t, scalar_t>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
  }
}

template <typename acc_t, typename scalar_t>
ORTHOCORE_TARGET_AVX2 void backward_row_avx2(const acc_t* padded, const scalar_t* grad, acc_t* grad_padded, int64_t y,
    const RowGeometry& g, const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  backward_row_of_width<acc_t, scalar_t>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
}

template <typename acc_t, typename scalar_t>
ORTHOCORE_TARGET_AVX512 void backward_row_avx512(const acc_t* padded, const scalar_t* grad, acc_t* grad_padded,
    int64_t y, const RowGeometry& g, const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  backward_row_of_width<acc_t, scalar_t>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
}

template <typename acc_t, typename scalar_t>
ORTHOCORE_TARGET_BASE void backward_row_base(const acc_t* padded, const scalar_t* grad, acc_t* grad_padded, int64_t y,
    const RowGeometry& g, const std::vector<BilateralTap>& taps, acc_t color_coeff, acc_t* scratch) {
  backward_row_of_width<acc_t, scalar_t>(padded, grad, grad_padded, y, g, taps, color_coeff, scratch);
}

at::Tensor bilateral_bwd_cpu(const at::Tensor& grad_in, const at::Tensor& x_in, int64_t radius, double sigma_color,
                             double sigma_space) {
  check_bilateral_inputs(x_in, radius, sigma_color, sigma_space);
  TORCH_CHECK(grad_in.sizes() == x_in.sizes() && grad_in.scalar_type() == x_in.scalar_type(),
              "bilateral: grad must have the shape and dtype of x, got ", grad_in.sizes(), " ", grad_in.scalar_type(),
              " for ", x_in.sizes(), " ", x_in.scalar_type());
  const at::Tensor x = x_in.contiguous(), grad = grad_in.contiguous();
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  at::Tensor grad_x = at::empty_like(x);
  if (grad_x.numel() == 0) return grad_x;
  const std::vector<BilateralTap> taps = bilateral_taps(radius, sigma_space);
  std::vector<int64_t> rows(height + 2 * radius), columns(width + 2 * radius);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = reflect_101(int64_t(i) - radius, height);
  for (size_t i = 0; i < columns.size(); ++i) columns[i] = reflect_101(int64_t(i) - radius, width);

  const int64_t pitch = width + 2 * radius, padded_rows = height + 2 * radius, padded_plane = padded_rows * pitch;
  // the "window" is the whole padded image here
  const RowGeometry geometry{channels, pitch, padded_plane, width, radius, height * width};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bilateral_bwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto backward = widest_variant(backward_row_avx512<acc_t, scalar_t>, backward_row_avx2<acc_t, scalar_t>,
                                         backward_row_base<acc_t, scalar_t>);
    const acc_t color_coeff = static_cast<acc_t>(-0.5 / (sigma_color * sigma_color));
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    const scalar_t* upstream = grad.const_data_ptr<scalar_t>();
    scalar_t* dst = grad_x.mutable_data_ptr<scalar_t>();
    const int64_t plane = height * width, image_size = channels * plane;
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      // per image: its padded copy, its padded gradient, the rows' scratch
      std::vector<acc_t> padded(channels * padded_plane), grad_padded(channels * padded_plane);
      std::vector<acc_t> scratch((2 * int64_t(taps.size()) + channels + 2) * width), folded_plane(plane);
      acc_t* folded = folded_plane.data();
      for (int64_t b = begin; b < end; ++b) {
        const scalar_t* image = in + b * image_size;
        for (int64_t c = 0; c < channels; ++c) {
          for (int64_t py = 0; py < padded_rows; ++py) {
            const scalar_t* source = image + c * plane + rows[py] * width;
            acc_t* target = padded.data() + c * padded_plane + py * pitch;
            for (int64_t px = 0; px < pitch; ++px) target[px] = static_cast<acc_t>(source[columns[px]]);
          }
        }
        std::fill(grad_padded.begin(), grad_padded.end(), acc_t(0));
        for (int64_t y = 0; y < height; ++y) {
          backward(padded.data(), upstream + b * image_size + y * width, grad_padded.data(), y, geometry, taps,
                   color_coeff, scratch.data());
        }
        // fold the padding back onto the pixels it copies
        for (int64_t c = 0; c < channels; ++c) {
          std::fill(folded, folded + plane, acc_t(0));
          for (int64_t py = 0; py < padded_rows; ++py) {
            const acc_t* source = grad_padded.data() + c * padded_plane + py * pitch;
            acc_t* target = folded + rows[py] * width;
            for (int64_t px = 0; px < pitch; ++px) target[columns[px]] += source[px];
          }
          scalar_t* out = dst + b * image_size + c * plane;
          for (int64_t i = 0; i < plane; ++i) out[i] = static_cast<scalar_t>(folded[i]);
        }
      }
    });
  });
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) {
  m.impl("bilateral_fwd", &bilateral_fwd_cpu);
  m.impl("bilateral_bwd", &bilateral_bwd_cpu);
}

}  // namespace orthocore
