// attack_step on CUDA, the same structure as csrc/cpu/attack_step.cpp: one block per
// row; block reductions for sum|g| (momentum), ||direction||^2 and ||x - clean||^2 (L2),
// then one element-wise write loop. All in one launch; rows stay in L2 between loops.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../attack_step.h"

namespace orthocore {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 65535;

// Sum of one value over the block, returned to every thread.
template <typename acc_t>
__device__ inline acc_t block_sum(acc_t value) {
  __shared__ acc_t shared[kThreads / 32];
  __shared__ acc_t total;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffff, value, offset);
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < kThreads / 32 ? shared[lane] : acc_t(0);
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffff, value, offset);
    if (lane == 0) total = value;
  }
  __syncthreads();
  const acc_t result = total;
  __syncthreads();  // `shared` and `total` are reused by the next reduction
  return result;
}

template <typename scalar_t, typename acc_t>
__global__ void attack_step_kernel(const scalar_t* __restrict__ adv, const scalar_t* __restrict__ grad,
                                   const scalar_t* __restrict__ clean, const scalar_t* __restrict__ momentum,
                                   const acc_t* __restrict__ step, const acc_t* __restrict__ eps, int64_t rows,
                                   int64_t cols, bool l2, acc_t decay, scalar_t* __restrict__ out,
                                   scalar_t* __restrict__ new_momentum) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t base = row * cols;
    acc_t l1_mean = 0;
    if (momentum) {
      acc_t l1 = 0;
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) l1 += fabs(static_cast<acc_t>(grad[base + i]));
      l1_mean = block_sum(l1) / static_cast<acc_t>(cols);
    }
    auto source = [&](int64_t i) -> acc_t {
      const acc_t g = static_cast<acc_t>(grad[base + i]);
      return momentum ? momentum_update(g, static_cast<acc_t>(momentum[base + i]), l1_mean, decay) : g;
    };
    const acc_t row_step = step[row], row_eps = eps[row];
    acc_t dir_norm = 0, factor = 1;
    if (l2) {
      acc_t sq = 0;
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
        const acc_t d = source(i);
        sq += d * d;
      }
      dir_norm = sqrt(block_sum(sq));
      acc_t delta_sq = 0;
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
        const acc_t x = static_cast<acc_t>(adv[base + i]) + row_step * step_direction(source(i), true, dir_norm);
        const acc_t delta = x - static_cast<acc_t>(clean[base + i]);
        delta_sq += delta * delta;
      }
      factor = l2_projection_factor(row_eps, sqrt(block_sum(delta_sq)));
    }
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const acc_t d = source(i);
      if (new_momentum) new_momentum[base + i] = static_cast<scalar_t>(d);
      const acc_t x = static_cast<acc_t>(adv[base + i]) + row_step * step_direction(d, l2, dir_norm);
      const acc_t c = static_cast<acc_t>(clean[base + i]);
      out[base + i] = static_cast<scalar_t>(project_and_clamp(x - c, c, l2, row_eps, factor));
    }
  }
}

std::tuple<at::Tensor, at::Tensor> attack_step_fwd_cuda(const at::Tensor& adv_in, const at::Tensor& grad_in,
                                                        const at::Tensor& clean_in,
                                                        const c10::optional<at::Tensor>& momentum_in,
                                                        const at::Tensor& step_in, const at::Tensor& eps_in, bool l2,
                                                        double decay) {
  const c10::cuda::CUDAGuard guard(adv_in.device());
  const AttackStepTensors t = prepare_attack_step(adv_in, grad_in, clean_in, momentum_in, step_in, eps_in);
  const at::Tensor &adv = t.adv, &grad = t.grad, &clean = t.clean, &momentum = t.momentum;
  const at::Tensor &step = t.step, &eps = t.eps, &out = t.out, &new_momentum = t.new_momentum;
  const bool has_momentum = t.has_momentum;
  const int64_t rows = t.rows, cols = t.cols;
  if (rows == 0 || cols == 0) return {out, new_momentum};
  const auto stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, adv.scalar_type(), "attack_step_fwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    attack_step_kernel<scalar_t, acc_t><<<std::min(rows, kMaxGrid), kThreads, 0, stream>>>(
        adv.const_data_ptr<scalar_t>(), grad.const_data_ptr<scalar_t>(), clean.const_data_ptr<scalar_t>(),
        has_momentum ? momentum.const_data_ptr<scalar_t>() : nullptr, step.const_data_ptr<acc_t>(),
        eps.const_data_ptr<acc_t>(), rows, cols, l2, static_cast<acc_t>(decay), out.mutable_data_ptr<scalar_t>(),
        has_momentum ? new_momentum.mutable_data_ptr<scalar_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, new_momentum};
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CUDA, m) { m.impl("attack_step_fwd", &attack_step_fwd_cuda); }

}  // namespace orthocore
