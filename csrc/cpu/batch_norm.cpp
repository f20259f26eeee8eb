// Double backward of train-mode batch norm on the CPU (formulas in orthocore/ops/batch_norm.py):
// per channel, one pass over (x, gy, ggx) for five sums, then one pass that writes the
// gradients with respect to gy and x. PyTorch's own double backward runs about thirty
// full-tensor operations; this is the cost that dominates orthogonal training after the
// convolutions.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

namespace orthocore {
namespace {

struct ChannelSums {
  double gy = 0, gy_xmu = 0, gg = 0, gg_xmu = 0, gy_gg = 0;
};

template <typename scalar_t>
ChannelSums channel_sums(const scalar_t* x, const scalar_t* gy, const scalar_t* ggx, int64_t batch, int64_t plane,
                         int64_t stride, double mean) {
  ChannelSums s;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t base = b * stride;
    double s_gy = 0, s_gy_xmu = 0, s_gg = 0, s_gg_xmu = 0, s_gy_gg = 0;
#pragma omp simd reduction(+ : s_gy, s_gy_xmu, s_gg, s_gg_xmu, s_gy_gg)
    for (int64_t i = 0; i < plane; ++i) {
      const double xmu = static_cast<double>(x[base + i]) - mean;
      const double g = static_cast<double>(gy[base + i]);
      const double gg = static_cast<double>(ggx[base + i]);
      s_gy += g;
      s_gy_xmu += g * xmu;
      s_gg += gg;
      s_gg_xmu += gg * xmu;
      s_gy_gg += g * gg;
    }
    s.gy += s_gy;
    s.gy_xmu += s_gy_xmu;
    s.gg += s_gg;
    s.gg_xmu += s_gg_xmu;
    s.gy_gg += s_gy_gg;
  }
  return s;
}

// ggy = a ggx + k1 (x - mu) + k0 and gx = cx (x - mu) + cgy gy + cgg ggx + c0, per channel.
template <typename acc_t>
struct OutputCoefficients {
  acc_t mu, a, k1, k0, cx, cgy, cgg, c0;
};

template <typename scalar_t, typename acc_t>
void write_gradients(const scalar_t* x, const scalar_t* gy, const scalar_t* ggx, int64_t n,
                     const OutputCoefficients<acc_t> k, scalar_t* ggy, scalar_t* gx) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const acc_t xmu = static_cast<acc_t>(x[i]) - k.mu;
    const acc_t g = static_cast<acc_t>(gy[i]);
    const acc_t gg = static_cast<acc_t>(ggx[i]);
    ggy[i] = static_cast<scalar_t>(k.a * gg + k.k1 * xmu + k.k0);
    gx[i] = static_cast<scalar_t>(k.cx * xmu + k.cgy * g + k.cgg * gg + k.c0);
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_double_backward_cpu(
    const at::Tensor& ggx_in, const std::optional<at::Tensor>& ggw_in, const std::optional<at::Tensor>& ggb_in,
    const at::Tensor& gy_in, const at::Tensor& x_in, const at::Tensor& weight_in, const at::Tensor& mean_in,
    const at::Tensor& invstd_in) {
  TORCH_CHECK(x_in.dim() >= 2, "batch_norm_double_backward: x must be (B, C, ...), got ", x_in.dim(), " dims");
  TORCH_CHECK(gy_in.sizes() == x_in.sizes() && ggx_in.sizes() == x_in.sizes(),
              "batch_norm_double_backward: gy and ggx must have x's shape");
  TORCH_CHECK(gy_in.scalar_type() == x_in.scalar_type() && ggx_in.scalar_type() == x_in.scalar_type(),
              "batch_norm_double_backward: gy and ggx must have x's dtype");
  const at::Tensor x = x_in.contiguous(), gy = gy_in.contiguous(), ggx = ggx_in.contiguous();
  const int64_t batch = x.size(0), channels = x.size(1);
  const int64_t plane = batch == 0 || channels == 0 ? 0 : x.numel() / (batch * channels);
  const int64_t count = batch * plane;  // elements per channel
  const auto stat_options = x.options().dtype(at::kDouble);
  const at::Tensor weight = weight_in.to(stat_options).contiguous();
  const at::Tensor mean = mean_in.to(stat_options).contiguous();
  const at::Tensor invstd = invstd_in.to(stat_options).contiguous();
  const at::Tensor ggw = ggw_in.has_value() && ggw_in->defined() ? ggw_in->to(stat_options).contiguous()
                                                                 : at::zeros({channels}, stat_options);
  const at::Tensor ggb = ggb_in.has_value() && ggb_in->defined() ? ggb_in->to(stat_options).contiguous()
                                                                 : at::zeros({channels}, stat_options);
  TORCH_CHECK(weight.numel() == channels && mean.numel() == channels && invstd.numel() == channels &&
                  ggw.numel() == channels && ggb.numel() == channels,
              "batch_norm_double_backward: per-channel tensors must have ", channels, " elements");
  at::Tensor ggy = at::empty_like(x), gx = at::empty_like(x);
  at::Tensor gw = at::zeros({channels}, stat_options);
  if (count == 0) return {ggy, gx, gw.to(weight_in.scalar_type())};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "batch_norm_double_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* x_ptr = x.const_data_ptr<scalar_t>();
    const scalar_t* gy_ptr = gy.const_data_ptr<scalar_t>();
    const scalar_t* ggx_ptr = ggx.const_data_ptr<scalar_t>();
    scalar_t* ggy_ptr = ggy.mutable_data_ptr<scalar_t>();
    scalar_t* gx_ptr = gx.mutable_data_ptr<scalar_t>();
    const double* w_ptr = weight.const_data_ptr<double>();
    const double* mean_ptr = mean.const_data_ptr<double>();
    const double* invstd_ptr = invstd.const_data_ptr<double>();
    const double* ggw_ptr = ggw.const_data_ptr<double>();
    const double* ggb_ptr = ggb.const_data_ptr<double>();
    double* gw_ptr = gw.mutable_data_ptr<double>();
    const int64_t stride = channels * plane;
    const double n = static_cast<double>(count);
    at::parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t offset = c * plane;
        const double mu = mean_ptr[c], r = invstd_ptr[c], w = w_ptr[c];
        const ChannelSums s = channel_sums(x_ptr + offset, gy_ptr + offset, ggx_ptr + offset, batch, plane, stride, mu);
        const double r2 = r * r, r3 = r2 * r;
        gw_ptr[c] = r * (s.gy_gg - s.gy * s.gg / n - r2 * s.gy_xmu * s.gg_xmu / n);
        // ggy = a ggx + k1 (x - mu) + k0
        const double a = w * r;
        const double k1 = -a * r2 * s.gg_xmu / n + ggw_ptr[c] * r;
        const double k0 = -a * s.gg / n + ggb_ptr[c];
        // gx = cx (x - mu) + cgy gy + cgg ggx + c0
        const double all_sub = s.gg * s.gy / n - s.gy_gg + 3.0 * r2 * s.gy_xmu * s.gg_xmu / n;
        const double cx = w * r3 / n * all_sub - ggw_ptr[c] * r3 * s.gy_xmu / n;
        const double cgy = -w * s.gg_xmu * r3 / n + ggw_ptr[c] * r;
        const double cgg = -w * s.gy_xmu * r3 / n;
        const double c0 = w * r3 / n * (s.gg_xmu * s.gy + s.gy_xmu * s.gg) / n - ggw_ptr[c] * r * s.gy / n;
        const auto cast = [](double v) { return static_cast<acc_t>(v); };
        const OutputCoefficients<acc_t> k{cast(mu), cast(a), cast(k1), cast(k0), cast(cx), cast(cgy), cast(cgg), cast(c0)};
        for (int64_t b = 0; b < batch; ++b) {
          const int64_t base = offset + b * stride;
          write_gradients(x_ptr + base, gy_ptr + base, ggx_ptr + base, plane, k, ggy_ptr + base, gx_ptr + base);
        }
      }
    });
  });
  return {ggy, gx, gw.to(weight_in.scalar_type())};
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) { m.impl("batch_norm_double_backward_fused", &batch_norm_double_backward_cpu); }

}  // namespace orthocore
