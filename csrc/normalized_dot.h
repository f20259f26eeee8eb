// Shared by the CPU and CUDA kernels of normalized_dot: argument checks and the
// per-row coefficients of the backward pass, so both backends compute the same math.
#pragma once

#include <ATen/ATen.h>
#include <cmath>

namespace orthocore {

inline void check_normalized_dot_inputs(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 2, "normalized_dot: a must be 2-D (B, D), got ", a.dim(), "-D");
  TORCH_CHECK(a.sizes() == b.sizes(), "normalized_dot: a and b must have one shape, got ",
              a.sizes(), " and ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "normalized_dot: a and b must have one dtype, got ",
              a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), "normalized_dot: a and b must be on one device, got ",
              a.device(), " and ", b.device());
  TORCH_CHECK(at::isFloatingType(a.scalar_type()), "normalized_dot: expected a floating dtype, got ",
              a.scalar_type());
}

inline void check_normalized_dot_stats(const at::Tensor& grad_delta, const at::Tensor& a,
                                       const at::Tensor& stats) {
  const auto rows = a.size(0);
  TORCH_CHECK(grad_delta.dim() == 1 && grad_delta.size(0) == rows,
              "normalized_dot_bwd: grad_delta must have shape (", rows, ",), got ", grad_delta.sizes());
  TORCH_CHECK(stats.dim() == 2 && stats.size(0) == rows && stats.size(1) == 3,
              "normalized_dot_bwd: stats must have shape (", rows, ", 3), got ", stats.sizes());
  TORCH_CHECK(grad_delta.device() == a.device() && stats.device() == a.device(),
              "normalized_dot_bwd: grad_delta and stats must be on the device of a (", a.device(), ")");
}

// The dtype in which sums are accumulated: float64 for float64 inputs, float32 otherwise.
inline at::ScalarType accumulate_type(at::ScalarType input) {
  return input == at::kDouble ? at::kDouble : at::kFloat;
}

// The checked, contiguous inputs and the allocated outputs of one forward call, shared
// by the CPU and CUDA entry points (a CUDA caller sets its device guard first).
struct NormalizedDotForward {
  at::Tensor a, b;       // (B, D) contiguous
  at::Tensor delta;      // (B,) in the input dtype
  at::Tensor stats;      // (B, 3) in the accumulation dtype
};

inline NormalizedDotForward prepare_normalized_dot_fwd(const at::Tensor& a, const at::Tensor& b) {
  check_normalized_dot_inputs(a, b);
  NormalizedDotForward t{a.contiguous(), b.contiguous(), {}, {}};
  t.delta = at::empty({t.a.size(0)}, t.a.options());
  t.stats = at::empty({t.a.size(0), 3}, t.a.options().dtype(accumulate_type(t.a.scalar_type())));
  return t;
}

// The same for one backward call: grad_delta and stats converted to the accumulation
// dtype; a gradient that is not asked for is an empty tensor.
struct NormalizedDotBackward {
  at::Tensor grad_delta, a, b, stats;
  at::Tensor grad_a, grad_b;
};

inline NormalizedDotBackward prepare_normalized_dot_bwd(const at::Tensor& grad_delta, const at::Tensor& a,
                                                        const at::Tensor& b, const at::Tensor& stats, bool need_a,
                                                        bool need_b) {
  check_normalized_dot_inputs(a, b);
  check_normalized_dot_stats(grad_delta, a, stats);
  const auto acc_type = accumulate_type(a.scalar_type());
  NormalizedDotBackward t{grad_delta.to(acc_type).contiguous(), a.contiguous(), b.contiguous(),
                          stats.to(acc_type).contiguous(), {}, {}};
  t.grad_a = need_a ? at::empty_like(t.a) : at::empty({0}, t.a.options());
  t.grad_b = need_b ? at::empty_like(t.b) : at::empty({0}, t.b.options());
  return t;
}

// Cosine from the row statistics; 0 when either vector is all zeros.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t delta_from_stats(acc_t ab, acc_t aa, acc_t bb) {
  // A zero row gives 0; a row holding NaN gives NaN (ab * 0), as the reference does.
  if (!(aa > acc_t(0)) || !(bb > acc_t(0))) return ab * acc_t(0);
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

// d(g * delta)/da = ca_b * b + ca_a * a  and  d(g * delta)/db = cb_a * a + cb_b * b.
template <typename acc_t>
struct BackwardCoefficients {
  acc_t ca_b, ca_a, cb_a, cb_b;
};

template <typename acc_t>
C10_HOST_DEVICE inline BackwardCoefficients<acc_t> backward_coefficients(acc_t g, acc_t ab, acc_t aa,
                                                                         acc_t bb) {
  if (!(aa > acc_t(0)) || !(bb > acc_t(0))) return {acc_t(0), acc_t(0), acc_t(0), acc_t(0)};
  const acc_t inv_norms = acc_t(1) / (std::sqrt(aa) * std::sqrt(bb));
  const acc_t delta = ab * inv_norms;
  return {g * inv_norms, -g * delta / aa, g * inv_norms, -g * delta / bb};
}

}  // namespace orthocore
