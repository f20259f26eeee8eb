// Shared by the CPU and CUDA kernels of tv_denoise: argument checks and the step size,
// so both backends run skimage's Chambolle iteration with the same constants.
#pragma once

#include <ATen/ATen.h>

namespace orthocore {

// skimage's step 1 / (2 * ndim) for two-dimensional planes.
constexpr double kTvTau = 0.25;

inline void check_tv_denoise_inputs(const at::Tensor& x, double weight, int64_t iters) {
  TORCH_CHECK(x.dim() == 4, "tv_denoise: x must be (B, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "tv_denoise: expected a floating dtype, got ", x.scalar_type());
  TORCH_CHECK(weight > 0, "tv_denoise: weight must be > 0, got ", weight);
  TORCH_CHECK(iters >= 1, "tv_denoise: iters must be >= 1, got ", iters);
}

}  // namespace orthocore
