// attack_step on CUDA, the structure of csrc/cpu/attack_step.cpp: per row, up to three
// reductions (sum|g| for momentum, ||direction||^2 and ||x - clean||^2 for L2), then one
// element-wise write loop. With enough rows each block takes a whole row and does all of
// it in one launch (rows stay in L2 between the loops). A few long rows (an ImageNet
// batch of 16) would leave most of the GPU idle that way, so each row is then split into
// segments, one block each, and every reduction the step needs gets a launch of its own
// that writes one partial sum per segment; later launches add a row's partials in
// segment order, so the result is deterministic.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../attack_step.h"

namespace orthocore {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 65535;
// A row is split only into segments of at least this many elements (8 per thread),
// and into no more than it takes to give the GPU kBlocksPerSM blocks per multiprocessor.
constexpr int64_t kMinSegment = 8 * kThreads;
constexpr int64_t kBlocksPerSM = 4;

// The row reductions of a step, in the order they depend on each other; kWrite is the
// final element-wise pass. A launch of a split step runs up to its phase.
enum Phase : int { kL1 = 0, kDirSq = 1, kDeltaSq = 2, kWrite = 3 };

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

// The block's work item: elements [begin, end) of one row, segment `index` of `count`.
struct Segment {
  int64_t row, index, count, begin, end;
};

// One row reduction of the step, sum over the row of term(i). Unsplit rows sum it here
// and return false. In a split step, the launch of this reduction's phase writes the
// segment's partial to partials[which][row][index] and returns true (the block is done);
// later launches add the row's partials in segment order.
template <typename acc_t, typename Term>
__device__ inline bool row_reduction(const Segment& seg, Phase which, Phase phase, acc_t* partials, int64_t rows,
                                     Term term, acc_t& total) {
  const int64_t first = (which * rows + seg.row) * seg.count;  // of the row's partials
  if (seg.count > 1 && phase != which) {
    total = 0;
    for (int64_t s = 0; s < seg.count; ++s) total += partials[first + s];
    return false;
  }
  acc_t sum = 0;
  for (int64_t i = seg.begin + threadIdx.x; i < seg.end; i += blockDim.x) sum += term(i);
  sum = block_sum(sum);
  if (seg.count == 1) {
    total = sum;
    return false;
  }
  if (threadIdx.x == 0) partials[first + seg.index] = sum;
  return true;
}

template <typename scalar_t, typename acc_t>
__global__ void attack_step_kernel(const scalar_t* __restrict__ adv, const scalar_t* __restrict__ grad,
                                   const scalar_t* __restrict__ clean, const scalar_t* __restrict__ momentum,
                                   const acc_t* __restrict__ step, const acc_t* __restrict__ eps, int64_t rows,
                                   int64_t cols, bool l2, acc_t decay, int64_t segments, Phase phase,
                                   acc_t* __restrict__ partials, scalar_t* __restrict__ out,
                                   scalar_t* __restrict__ new_momentum) {
  const int64_t segment_len = (cols + segments - 1) / segments;
  for (int64_t item = blockIdx.x; item < rows * segments; item += gridDim.x) {
    Segment seg{item / segments, item % segments, segments, 0, cols};
    if (segments > 1) {
      seg.begin = seg.index * segment_len;
      seg.end = seg.begin + segment_len < cols ? seg.begin + segment_len : cols;
    }
    const int64_t base = seg.row * cols;
    acc_t l1_mean = 0;
    if (momentum) {
      acc_t l1;
      auto abs_grad = [&](int64_t i) -> acc_t { return fabs(static_cast<acc_t>(grad[base + i])); };
      if (row_reduction(seg, kL1, phase, partials, rows, abs_grad, l1)) continue;
      l1_mean = l1 / static_cast<acc_t>(cols);
    }
    auto source = [&](int64_t i) -> acc_t {
      const acc_t g = static_cast<acc_t>(grad[base + i]);
      return momentum ? momentum_update(g, static_cast<acc_t>(momentum[base + i]), l1_mean, decay) : g;
    };
    const acc_t row_step = step[seg.row], row_eps = eps[seg.row];
    acc_t dir_norm = 0, factor = 1;
    if (l2) {
      acc_t dir_sq, delta_sq;
      auto source_sq = [&](int64_t i) -> acc_t {
        const acc_t d = source(i);
        return d * d;
      };
      if (row_reduction(seg, kDirSq, phase, partials, rows, source_sq, dir_sq)) continue;
      dir_norm = sqrt(dir_sq);
      auto delta_term = [&](int64_t i) -> acc_t {
        const acc_t x = static_cast<acc_t>(adv[base + i]) + row_step * step_direction(source(i), true, dir_norm);
        const acc_t delta = x - static_cast<acc_t>(clean[base + i]);
        return delta * delta;
      };
      if (row_reduction(seg, kDeltaSq, phase, partials, rows, delta_term, delta_sq)) continue;
      factor = l2_projection_factor(row_eps, sqrt(delta_sq));
    }
    for (int64_t i = seg.begin + threadIdx.x; i < seg.end; i += blockDim.x) {
      const acc_t d = source(i);
      if (new_momentum) new_momentum[base + i] = static_cast<scalar_t>(d);
      const acc_t x = static_cast<acc_t>(adv[base + i]) + row_step * step_direction(d, l2, dir_norm);
      const acc_t c = static_cast<acc_t>(clean[base + i]);
      out[base + i] = static_cast<scalar_t>(project_and_clamp(x - c, c, l2, row_eps, factor));
    }
  }
}

// Segments per row: 1 when the rows alone give every multiprocessor a block.
int64_t segments_per_row(int64_t rows, int64_t cols, c10::DeviceIndex device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if (rows >= sms) return 1;
  const int64_t by_length = std::max<int64_t>(1, cols / kMinSegment);
  const int64_t by_occupancy = (kBlocksPerSM * sms + rows - 1) / rows;  // ceil
  return std::min(by_length, by_occupancy);
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
  const int64_t segments = segments_per_row(rows, cols, adv.get_device());
  const bool split_reductions = segments > 1 && (has_momentum || l2);
  // (3, rows, segments) partial sums, allocated only for a split step that reduces
  const at::Tensor partials =
      split_reductions ? at::empty({3, rows, segments}, step.options()) : at::Tensor();
  // An unsplit step is one launch; a split one launches each reduction it needs first.
  std::vector<Phase> phases;
  if (split_reductions && has_momentum) phases.push_back(kL1);
  if (split_reductions && l2) {
    phases.push_back(kDirSq);
    phases.push_back(kDeltaSq);
  }
  phases.push_back(kWrite);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, adv.scalar_type(), "attack_step_fwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    for (const Phase phase : phases) {
      attack_step_kernel<scalar_t, acc_t><<<std::min(rows * segments, kMaxGrid), kThreads, 0, stream>>>(
          adv.const_data_ptr<scalar_t>(), grad.const_data_ptr<scalar_t>(), clean.const_data_ptr<scalar_t>(),
          has_momentum ? momentum.const_data_ptr<scalar_t>() : nullptr, step.const_data_ptr<acc_t>(),
          eps.const_data_ptr<acc_t>(), rows, cols, l2, static_cast<acc_t>(decay), segments, phase,
          split_reductions ? partials.mutable_data_ptr<acc_t>() : nullptr, out.mutable_data_ptr<scalar_t>(),
          has_momentum ? new_momentum.mutable_data_ptr<scalar_t>() : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {out, new_momentum};
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CUDA, m) { m.impl("attack_step_fwd", &attack_step_fwd_cuda); }

}  // namespace orthocore
