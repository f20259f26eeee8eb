// normalized_dot on the CPU: one pass over a and b forward (a.b, |a|^2, |b|^2 together)
// and one pass backward. Work is split into (row, chunk) tasks so that OpenMP threads
// stay busy both for many short rows and for a few very long ones.
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../normalized_dot.h"
#include "../simd.h"

namespace orthocore {
namespace {

// Elements below which a chunk is not split further, and below which a task is not
// worth a thread of its own.
constexpr int64_t kMinChunk = 16384;
constexpr int64_t kMinTaskWork = 32768;

struct RowSplit {
  int64_t chunks;     // chunks per row
  int64_t chunk_len;  // elements per chunk (the last one may be shorter)
  int64_t grain;      // tasks per thread at the least
};

RowSplit split_rows(int64_t rows, int64_t cols) {
  const int64_t threads = at::get_num_threads();
  int64_t chunks = std::max<int64_t>(1, (4 * threads + rows - 1) / std::max<int64_t>(rows, 1));
  chunks = std::min(chunks, std::max<int64_t>(1, cols / kMinChunk));
  int64_t chunk_len = (cols + chunks - 1) / chunks;
  chunk_len = (chunk_len + 63) / 64 * 64;  // keep chunk starts on cache lines
  const int64_t grain = std::max<int64_t>(1, kMinTaskWork / std::max<int64_t>(chunk_len, 1));
  return {chunks, chunk_len, grain};
}

// Calls fn(task, offset, len) in parallel for every (row, chunk) task of split: task is
// row * split.chunks + chunk, offset the chunk's first element in the (rows, cols) matrix.
template <typename Fn>
void for_each_chunk(int64_t rows, int64_t cols, const RowSplit& split, const Fn& fn) {
  at::parallel_for(0, rows * split.chunks, split.grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t row = task / split.chunks;
      const int64_t start = std::min(cols, (task % split.chunks) * split.chunk_len);
      fn(task, row * cols + start, std::min(cols - start, split.chunk_len));
    }
  });
}

template <typename scalar_t, typename acc_t>
ORTHOCORE_SIMD_CLONES void accumulate_stats(const scalar_t* a, const scalar_t* b, int64_t n, acc_t* out) {
  acc_t ab = 0, aa = 0, bb = 0;
#pragma omp simd reduction(+ : ab, aa, bb)
  for (int64_t i = 0; i < n; ++i) {
    const acc_t x = static_cast<acc_t>(a[i]);
    const acc_t y = static_cast<acc_t>(b[i]);
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  out[0] = ab;
  out[1] = aa;
  out[2] = bb;
}

// out[i] = cx * x[i] + cy * y[i]
template <typename scalar_t, typename acc_t>
ORTHOCORE_SIMD_CLONES void linear_combination(const scalar_t* x, const scalar_t* y, acc_t cx, acc_t cy, int64_t n,
                               scalar_t* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<scalar_t>(cx * static_cast<acc_t>(x[i]) + cy * static_cast<acc_t>(y[i]));
  }
}

std::tuple<at::Tensor, at::Tensor> normalized_dot_fwd_cpu(const at::Tensor& a_in, const at::Tensor& b_in) {
  const NormalizedDotForward t = prepare_normalized_dot_fwd(a_in, b_in);
  const at::Tensor &a = t.a, &b = t.b, &delta = t.delta, &stats = t.stats;
  const int64_t rows = a.size(0), cols = a.size(1);
  if (rows == 0) return {delta, stats};
  const RowSplit split = split_rows(rows, cols);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "normalized_dot_fwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* b_ptr = b.const_data_ptr<scalar_t>();
    std::vector<acc_t> partial(rows * split.chunks * 3);
    for_each_chunk(rows, cols, split, [&](int64_t task, int64_t offset, int64_t len) {
      accumulate_stats(a_ptr + offset, b_ptr + offset, len, partial.data() + 3 * task);
    });
    acc_t* stats_ptr = stats.mutable_data_ptr<acc_t>();
    scalar_t* delta_ptr = delta.mutable_data_ptr<scalar_t>();
    for (int64_t row = 0; row < rows; ++row) {
      acc_t sums[3] = {0, 0, 0};
      for (int64_t c = 0; c < split.chunks; ++c) {
        for (int k = 0; k < 3; ++k) sums[k] += partial[3 * (row * split.chunks + c) + k];
      }
      std::copy(sums, sums + 3, stats_ptr + 3 * row);
      delta_ptr[row] = static_cast<scalar_t>(delta_from_stats(sums[0], sums[1], sums[2]));
    }
  });
  return {delta, stats};
}

std::tuple<at::Tensor, at::Tensor> normalized_dot_bwd_cpu(const at::Tensor& grad_delta_in, const at::Tensor& a_in,
                                                          const at::Tensor& b_in, const at::Tensor& stats_in,
                                                          bool need_a, bool need_b) {
  const NormalizedDotBackward t = prepare_normalized_dot_bwd(grad_delta_in, a_in, b_in, stats_in, need_a, need_b);
  const at::Tensor &a = t.a, &b = t.b, &grad_delta = t.grad_delta, &stats = t.stats;
  const at::Tensor &grad_a = t.grad_a, &grad_b = t.grad_b;
  const int64_t rows = a.size(0), cols = a.size(1);
  if (rows == 0 || (!need_a && !need_b)) return {grad_a, grad_b};
  const RowSplit split = split_rows(rows, cols);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "normalized_dot_bwd_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* b_ptr = b.const_data_ptr<scalar_t>();
    const acc_t* g_ptr = grad_delta.const_data_ptr<acc_t>();
    const acc_t* s_ptr = stats.const_data_ptr<acc_t>();
    scalar_t* ga_ptr = need_a ? grad_a.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gb_ptr = need_b ? grad_b.mutable_data_ptr<scalar_t>() : nullptr;
    for_each_chunk(rows, cols, split, [&](int64_t task, int64_t offset, int64_t len) {
      const int64_t row = task / split.chunks;
      const auto coef = backward_coefficients(g_ptr[row], s_ptr[3 * row], s_ptr[3 * row + 1], s_ptr[3 * row + 2]);
      if (ga_ptr) linear_combination(b_ptr + offset, a_ptr + offset, coef.ca_b, coef.ca_a, len, ga_ptr + offset);
      if (gb_ptr) linear_combination(a_ptr + offset, b_ptr + offset, coef.cb_a, coef.cb_b, len, gb_ptr + offset);
    });
  });
  return {grad_a, grad_b};
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) {
  m.impl("normalized_dot_fwd", &normalized_dot_fwd_cpu);
  m.impl("normalized_dot_bwd", &normalized_dot_bwd_cpu);
}

}  // namespace orthocore
