// attack_step on the CPU: OpenMP over rows; each row is streamed by up to three
// reduction loops (sum|g| for momentum, ||direction||^2 and ||x - clean||^2 for L2) and
// one write loop. A CIFAR/ImageNet row stays in cache between the loops, so memory is
// read once. Mirrors csrc/cuda/attack_step.cu.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>

#include "../attack_step.h"

namespace orthocore {
namespace {

// Rows below which a task is not worth a thread of its own, scaled by row length.
constexpr int64_t kMinTaskWork = 32768;

template <typename scalar_t, typename acc_t>
void attack_step_row(const scalar_t* adv, const scalar_t* grad, const scalar_t* clean, const scalar_t* momentum,
                     int64_t cols, acc_t step, acc_t eps, bool l2, acc_t decay, scalar_t* out,
                     scalar_t* new_momentum) {
  acc_t l1_mean = 0;
  if (momentum) {
    acc_t l1 = 0;
#pragma omp simd reduction(+ : l1)
    for (int64_t i = 0; i < cols; ++i) l1 += std::abs(static_cast<acc_t>(grad[i]));
    l1_mean = l1 / static_cast<acc_t>(cols);
  }
  auto source = [&](int64_t i) -> acc_t {
    const acc_t g = static_cast<acc_t>(grad[i]);
    return momentum ? momentum_update(g, static_cast<acc_t>(momentum[i]), l1_mean, decay) : g;
  };
  acc_t dir_norm = 0, factor = 1;
  if (l2) {
    acc_t sq = 0;
    for (int64_t i = 0; i < cols; ++i) {
      const acc_t d = source(i);
      sq += d * d;
    }
    dir_norm = std::sqrt(sq);
    acc_t delta_sq = 0;
    for (int64_t i = 0; i < cols; ++i) {
      const acc_t x = static_cast<acc_t>(adv[i]) + step * step_direction(source(i), true, dir_norm);
      const acc_t delta = x - static_cast<acc_t>(clean[i]);
      delta_sq += delta * delta;
    }
    factor = l2_projection_factor(eps, std::sqrt(delta_sq));
  }
  for (int64_t i = 0; i < cols; ++i) {
    const acc_t d = source(i);
    if (new_momentum) new_momentum[i] = static_cast<scalar_t>(d);
    const acc_t x = static_cast<acc_t>(adv[i]) + step * step_direction(d, l2, dir_norm);
    const acc_t c = static_cast<acc_t>(clean[i]);
    out[i] = static_cast<scalar_t>(project_and_clamp(x - c, c, l2, eps, factor));
  }
}

std::tuple<at::Tensor, at::Tensor> attack_step_fwd_cpu(const at::Tensor& adv_in, const at::Tensor& grad_in,
                                                       const at::Tensor& clean_in,
                                                       const c10::optional<at::Tensor>& momentum_in,
                                                       const at::Tensor& step_in, const at::Tensor& eps_in, bool l2,
                                                       double decay) {
  const AttackStepTensors t = prepare_attack_step(adv_in, grad_in, clean_in, momentum_in, step_in, eps_in);
  const at::Tensor &adv = t.adv, &grad = t.grad, &clean = t.clean, &momentum = t.momentum;
  const at::Tensor &step = t.step, &eps = t.eps, &out = t.out, &new_momentum = t.new_momentum;
  const bool has_momentum = t.has_momentum;
  const int64_t rows = t.rows, cols = t.cols;
  if (rows == 0 || cols == 0) return {out, new_momentum};
  const int64_t grain = std::max<int64_t>(1, kMinTaskWork / cols);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, adv.scalar_type(), "attack_step_fwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* adv_ptr = adv.const_data_ptr<scalar_t>();
    const scalar_t* grad_ptr = grad.const_data_ptr<scalar_t>();
    const scalar_t* clean_ptr = clean.const_data_ptr<scalar_t>();
    const scalar_t* m_ptr = has_momentum ? momentum.const_data_ptr<scalar_t>() : nullptr;
    const acc_t* step_ptr = step.const_data_ptr<acc_t>();
    const acc_t* eps_ptr = eps.const_data_ptr<acc_t>();
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    scalar_t* new_m_ptr = has_momentum ? new_momentum.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t offset = row * cols;
        attack_step_row<scalar_t, acc_t>(adv_ptr + offset, grad_ptr + offset, clean_ptr + offset,
                                         m_ptr ? m_ptr + offset : nullptr, cols, step_ptr[row], eps_ptr[row], l2,
                                         static_cast<acc_t>(decay), out_ptr + offset,
                                         new_m_ptr ? new_m_ptr + offset : nullptr);
      }
    });
  });
  return {out, new_momentum};
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) { m.impl("attack_step_fwd", &attack_step_fwd_cpu); }

}  // namespace orthocore
