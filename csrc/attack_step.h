// Shared by the CPU and CUDA kernels of attack_step: argument checks and the
// element-wise formulas, so that both backends (and the Python reference in
// orthocore/ops/attack_step.py) compute the same math in the same order.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>
#include <cmath>

namespace orthocore {

inline void check_attack_step_inputs(const at::Tensor& adv, const at::Tensor& grad, const at::Tensor& clean,
                                     const c10::optional<at::Tensor>& momentum, const at::Tensor& step,
                                     const at::Tensor& eps) {
  TORCH_CHECK(adv.dim() == 2, "attack_step: adv must be 2-D (B, D), got ", adv.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(adv.scalar_type()), "attack_step: expected a floating dtype, got ",
              adv.scalar_type());
  for (const at::Tensor* other : {&grad, &clean}) {
    TORCH_CHECK(other->sizes() == adv.sizes() && other->scalar_type() == adv.scalar_type() &&
                    other->device() == adv.device(),
                "attack_step: grad and clean must match adv (", adv.sizes(), ", ", adv.scalar_type(), ", ",
                adv.device(), "), got ", other->sizes(), ", ", other->scalar_type(), ", ", other->device());
  }
  if (momentum.has_value()) {
    TORCH_CHECK(momentum->sizes() == adv.sizes() && momentum->scalar_type() == adv.scalar_type() &&
                    momentum->device() == adv.device(),
                "attack_step: momentum must match adv (", adv.sizes(), ", ", adv.scalar_type(), "), got ",
                momentum->sizes(), ", ", momentum->scalar_type());
  }
  const auto acc = adv.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  for (const at::Tensor* per_sample : {&step, &eps}) {
    TORCH_CHECK(per_sample->dim() == 1 && per_sample->size(0) == adv.size(0) &&
                    per_sample->scalar_type() == acc && per_sample->device() == adv.device(),
                "attack_step: step and eps must be (", adv.size(0), ",) ", acc, " tensors on ", adv.device(),
                ", got ", per_sample->sizes(), " ", per_sample->scalar_type(), " on ", per_sample->device());
  }
}

// The checked, contiguous inputs and the allocated outputs of one step, shared by the
// CPU and CUDA entry points. new_momentum is empty without momentum. (On CUDA, call it
// under the device guard.)
struct AttackStepTensors {
  at::Tensor adv, grad, clean, momentum, step, eps, out, new_momentum;
  bool has_momentum;
  int64_t rows, cols;
};

inline AttackStepTensors prepare_attack_step(const at::Tensor& adv, const at::Tensor& grad, const at::Tensor& clean,
                                             const c10::optional<at::Tensor>& momentum, const at::Tensor& step,
                                             const at::Tensor& eps) {
  check_attack_step_inputs(adv, grad, clean, momentum, step, eps);
  AttackStepTensors t;
  t.adv = adv.contiguous();
  t.grad = grad.contiguous();
  t.clean = clean.contiguous();
  t.has_momentum = momentum.has_value();
  t.momentum = t.has_momentum ? momentum->contiguous() : at::Tensor();
  t.step = step.contiguous();
  t.eps = eps.contiguous();
  t.out = at::empty_like(t.adv);
  t.new_momentum = t.has_momentum ? at::empty_like(t.adv) : at::empty({0}, t.adv.options());
  t.rows = t.adv.size(0);
  t.cols = t.adv.size(1);
  return t;
}

// The direction source of one element: the raw gradient, or the new momentum
// grad / mean|grad| + decay * m (Dong et al.); l1_mean == 0 drops the gradient term.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t momentum_update(acc_t g, acc_t m, acc_t l1_mean, acc_t decay) {
  const acc_t normalised = l1_mean > acc_t(0) ? g / l1_mean : acc_t(0);
  return normalised + m * decay;
}

// The step direction of one element: sign for L-inf, value / ||row|| for L2 (0 for a zero row).
template <typename acc_t>
C10_HOST_DEVICE inline acc_t step_direction(acc_t d, bool l2, acc_t row_norm) {
  if (l2) return row_norm > acc_t(0) ? d / row_norm : acc_t(0);
  return d > acc_t(0) ? acc_t(1) : (d < acc_t(0) ? acc_t(-1) : acc_t(0));
}

// Multiplier of the perturbation for the L2 projection: min(1, eps / ||delta||), 1 for a zero delta.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t l2_projection_factor(acc_t eps, acc_t delta_norm) {
  if (!(delta_norm > acc_t(0))) return acc_t(1);
  const acc_t factor = eps / delta_norm;
  return factor < acc_t(1) ? factor : acc_t(1);
}

// Final value of one element: clean + projected delta, clamped to [0, 1].
template <typename acc_t>
C10_HOST_DEVICE inline acc_t project_and_clamp(acc_t delta, acc_t clean, bool l2, acc_t eps, acc_t l2_factor) {
  if (l2) {
    delta = delta * l2_factor;
  } else {
    delta = delta < -eps ? -eps : (delta > eps ? eps : delta);
  }
  const acc_t x = clean + delta;
  return x < acc_t(0) ? acc_t(0) : (x > acc_t(1) ? acc_t(1) : x);
}

}  // namespace orthocore
