// Helpers of the CPU bilateral kernel: argument checks, OpenCV's border reflection and
// its circular window of spatial taps.
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

inline void check_bilateral_inputs(const at::Tensor& x, int64_t radius, double sigma_color, double sigma_space) {
  TORCH_CHECK(x.dim() == 4, "bilateral: x must be (B, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "bilateral: expected a floating dtype, got ", x.scalar_type());
  TORCH_CHECK(radius >= 0, "bilateral: radius must be >= 0, got ", radius);
  TORCH_CHECK(sigma_color > 0 && sigma_space > 0, "bilateral: sigmas must be > 0, got ", sigma_color, " and ",
              sigma_space);
}

// OpenCV's BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba) for any position, reflecting as
// often as needed; size >= 1.
inline int64_t reflect_101(int64_t position, int64_t size) {
  if (size == 1) return 0;
  const int64_t period = 2 * (size - 1);
  int64_t folded = position % period;
  if (folded < 0) folded += period;
  return folded >= size ? period - folded : folded;
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
