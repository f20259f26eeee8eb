// Shared by the CPU and CUDA kernels of bilateral: argument checks and OpenCV's
// circular window of spatial taps, so both backends use the same weights.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

namespace orthocore {

// One offset of the window and its spatial weight exp(-(dy^2 + dx^2) / (2 sigma_space^2)).
struct BilateralTap {
  int dy;
  int dx;
  float weight;
};

inline void check_bilateral_inputs(const at::Tensor& padded, int64_t radius, double sigma_color,
                                   double sigma_space) {
  TORCH_CHECK(padded.dim() == 4, "bilateral: padded input must be (B, C, H + 2r, W + 2r), got ", padded.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(padded.scalar_type()), "bilateral: expected a floating dtype, got ",
              padded.scalar_type());
  TORCH_CHECK(radius >= 0, "bilateral: radius must be >= 0, got ", radius);
  TORCH_CHECK(padded.size(2) >= 2 * radius && padded.size(3) >= 2 * radius,
              "bilateral: padded input ", padded.sizes(), " is smaller than twice the radius ", radius);
  TORCH_CHECK(sigma_color > 0 && sigma_space > 0, "bilateral: sigmas must be > 0, got ", sigma_color, " and ",
              sigma_space);
}

// OpenCV's window: every (dy, dx) with dy^2 + dx^2 <= radius^2, row by row.
inline std::vector<BilateralTap> bilateral_taps(int64_t radius, double sigma_space) {
  std::vector<BilateralTap> taps;
  const double coeff = -0.5 / (sigma_space * sigma_space);
  for (int dy = -static_cast<int>(radius); dy <= radius; ++dy) {
    for (int dx = -static_cast<int>(radius); dx <= radius; ++dx) {
      const double r2 = double(dy) * dy + double(dx) * dx;
      if (r2 > double(radius) * radius) continue;
      taps.push_back({dy, dx, static_cast<float>(std::exp(r2 * coeff))});
    }
  }
  return taps;
}

}  // namespace orthocore
