// normalized_dot on CUDA, the same two passes as csrc/cpu/normalized_dot.cpp:
// forward = per-(row, split) partial sums of a.b, |a|^2, |b|^2 (block reductions),
// then a one-thread-per-row finalize that sums the splits and writes stats and delta;
// backward = one element-wise pass from per-row coefficients.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../normalized_dot.h"

namespace orthocore {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxGridY = 65535;

template <typename acc_t>
__device__ inline acc_t warp_sum(acc_t value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffff, value, offset);
  return value;
}

// Sums three values over the block; thread 0 gets the totals.
template <typename acc_t>
__device__ inline void block_sum3(acc_t& x, acc_t& y, acc_t& z) {
  __shared__ acc_t shared[3][kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  x = warp_sum(x);
  y = warp_sum(y);
  z = warp_sum(z);
  if (lane == 0) {
    shared[0][warp] = x;
    shared[1][warp] = y;
    shared[2][warp] = z;
  }
  __syncthreads();
  if (warp == 0) {
    x = lane < kThreads / 32 ? shared[0][lane] : acc_t(0);
    y = lane < kThreads / 32 ? shared[1][lane] : acc_t(0);
    z = lane < kThreads / 32 ? shared[2][lane] : acc_t(0);
    x = warp_sum(x);
    y = warp_sum(y);
    z = warp_sum(z);
  }
}

// grid (splits, rows): block (split, row) reduces elements [split*chunk, (split+1)*chunk).
template <typename scalar_t, typename acc_t>
__global__ void normalized_dot_partial_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                              int64_t rows, int64_t cols, int64_t chunk,
                                              acc_t* __restrict__ partial /* (rows, splits, 3) */) {
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const int64_t start = blockIdx.x * chunk;
    const int64_t stop = min(cols, start + chunk);
    acc_t ab = 0, aa = 0, bb = 0;
    for (int64_t i = start + threadIdx.x; i < stop; i += blockDim.x) {
      const acc_t x = static_cast<acc_t>(a[row * cols + i]);
      const acc_t y = static_cast<acc_t>(b[row * cols + i]);
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    block_sum3(ab, aa, bb);
    if (threadIdx.x == 0) {
      acc_t* out = partial + 3 * (row * gridDim.x + blockIdx.x);
      out[0] = ab;
      out[1] = aa;
      out[2] = bb;
    }
    __syncthreads();
  }
}

template <typename scalar_t, typename acc_t>
__global__ void normalized_dot_finalize_kernel(const acc_t* __restrict__ partial, int64_t rows, int64_t splits,
                                               acc_t* __restrict__ stats, scalar_t* __restrict__ delta) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  acc_t sums[3] = {0, 0, 0};
  for (int64_t s = 0; s < splits; ++s) {
    for (int k = 0; k < 3; ++k) sums[k] += partial[3 * (row * splits + s) + k];
  }
  for (int k = 0; k < 3; ++k) stats[3 * row + k] = sums[k];
  delta[row] = static_cast<scalar_t>(delta_from_stats(sums[0], sums[1], sums[2]));
}

// grid (column blocks, rows): element-wise gradients from per-row coefficients.
template <typename scalar_t, typename acc_t>
__global__ void normalized_dot_backward_kernel(const acc_t* __restrict__ grad_delta, const scalar_t* __restrict__ a,
                                               const scalar_t* __restrict__ b, const acc_t* __restrict__ stats,
                                               int64_t rows, int64_t cols, scalar_t* __restrict__ grad_a,
                                               scalar_t* __restrict__ grad_b) {
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const auto coef = backward_coefficients(grad_delta[row], stats[3 * row], stats[3 * row + 1], stats[3 * row + 2]);
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < cols;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const int64_t idx = row * cols + i;
      const acc_t x = static_cast<acc_t>(a[idx]);
      const acc_t y = static_cast<acc_t>(b[idx]);
      if (grad_a) grad_a[idx] = static_cast<scalar_t>(coef.ca_b * y + coef.ca_a * x);
      if (grad_b) grad_b[idx] = static_cast<scalar_t>(coef.cb_a * x + coef.cb_b * y);
    }
  }
}

// Column blocks per row so that the whole grid covers the GPU a few times over.
int64_t column_blocks(int64_t rows, int64_t cols, int64_t per_block) {
  int device = 0, sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t wanted = std::max<int64_t>(1, (4 * int64_t(sms) + rows - 1) / std::max<int64_t>(rows, 1));
  return std::max<int64_t>(1, std::min(wanted, (cols + per_block - 1) / per_block));
}

std::tuple<at::Tensor, at::Tensor> normalized_dot_fwd_cuda(const at::Tensor& a_in, const at::Tensor& b_in) {
  const c10::cuda::CUDAGuard guard(a_in.device());
  const NormalizedDotForward t = prepare_normalized_dot_fwd(a_in, b_in);
  const at::Tensor &a = t.a, &b = t.b, &delta = t.delta, &stats = t.stats;
  const int64_t rows = a.size(0), cols = a.size(1);
  if (rows == 0) return {delta, stats};
  const int64_t splits = column_blocks(rows, cols, 8 * kThreads);
  const int64_t chunk = std::max<int64_t>(1, (cols + splits - 1) / splits);
  at::Tensor partial = at::empty({rows, splits, 3}, stats.options());
  const auto stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "normalized_dot_fwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const dim3 grid(splits, std::min<int64_t>(rows, kMaxGridY));
    normalized_dot_partial_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), rows, cols, chunk,
        partial.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    normalized_dot_finalize_kernel<scalar_t, acc_t><<<(rows + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
        partial.const_data_ptr<acc_t>(), rows, splits, stats.mutable_data_ptr<acc_t>(),
        delta.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {delta, stats};
}

std::tuple<at::Tensor, at::Tensor> normalized_dot_bwd_cuda(const at::Tensor& grad_delta_in, const at::Tensor& a_in,
                                                           const at::Tensor& b_in, const at::Tensor& stats_in,
                                                           bool need_a, bool need_b) {
  const c10::cuda::CUDAGuard guard(a_in.device());
  const NormalizedDotBackward t = prepare_normalized_dot_bwd(grad_delta_in, a_in, b_in, stats_in, need_a, need_b);
  const at::Tensor &a = t.a, &b = t.b, &grad_delta = t.grad_delta, &stats = t.stats;
  const at::Tensor &grad_a = t.grad_a, &grad_b = t.grad_b;
  const int64_t rows = a.size(0), cols = a.size(1);
  if (rows == 0 || cols == 0 || (!need_a && !need_b)) return {grad_a, grad_b};
  const auto stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "normalized_dot_bwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const dim3 grid(column_blocks(rows, cols, 4 * kThreads), std::min<int64_t>(rows, kMaxGridY));
    normalized_dot_backward_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        grad_delta.const_data_ptr<acc_t>(), a.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(),
        stats.const_data_ptr<acc_t>(), rows, cols, need_a ? grad_a.mutable_data_ptr<scalar_t>() : nullptr,
        need_b ? grad_b.mutable_data_ptr<scalar_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_a, grad_b};
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CUDA, m) {
  m.impl("normalized_dot_fwd", &normalized_dot_fwd_cuda);
  m.impl("normalized_dot_bwd", &normalized_dot_bwd_cuda);
}

}  // namespace orthocore
