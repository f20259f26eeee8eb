// tv_denoise on CUDA: one thread block per (image, channel) plane runs every iteration
// of csrc/cpu/tv_denoise.cpp's Chambolle loop (primal pass, barrier, dual pass,
// barrier). Why CUDA beside Triton: when u, p_y and p_x fit in shared memory (planes up
// to 4096 pixels in float32: CIFAR's 32x32 uses 12 KB) they never leave the SM for all
// iterations, which Triton cannot express (its programs have no addressable shared
// memory). Larger planes keep the three arrays in a global scratch buffer instead, the
// same scheme as the Triton kernel.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../tv_denoise.h"

namespace orthocore {
namespace {

constexpr int64_t kSharedBytes = 48 * 1024;  // the default dynamic shared memory limit

// grid (planes): block p solves plane p. scratch is (planes, 3, H*W) when the plane does
// not fit in shared memory, else unused.
template <typename scalar_t, typename acc_t>
__global__ void tv_denoise_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, acc_t* scratch,
                                  int64_t height, int64_t width, acc_t tau, acc_t tau_over_weight, int64_t iters,
                                  bool in_shared) {
  extern __shared__ unsigned char shared_raw[];
  const int64_t area = height * width;
  const int64_t plane = blockIdx.x;
  acc_t* u = in_shared ? reinterpret_cast<acc_t*>(shared_raw) : scratch + plane * 3 * area;
  acc_t* py = u + area;
  acc_t* px = py + area;
  const scalar_t* f = in + plane * area;
  for (int64_t i = threadIdx.x; i < 2 * area; i += blockDim.x) py[i] = acc_t(0);
  __syncthreads();
  for (int64_t step = 0; step < iters; ++step) {
    const bool last = step + 1 == iters;
    for (int64_t i = threadIdx.x; i < area; i += blockDim.x) {
      const int64_t y = i / width, x = i - y * width;
      acc_t d = -(py[i] + px[i]);
      if (y > 0) d += py[i - width];
      if (x > 0) d += px[i - 1];
      const acc_t value = static_cast<acc_t>(f[i]) + d;
      if (last) {
        out[plane * area + i] = static_cast<scalar_t>(value);
      } else {
        u[i] = value;
      }
    }
    if (last) break;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < area; i += blockDim.x) {
      const int64_t y = i / width, x = i - y * width;
      const acc_t gy = y + 1 < height ? u[i + width] - u[i] : acc_t(0);
      const acc_t gx = x + 1 < width ? u[i + 1] - u[i] : acc_t(0);
      const acc_t scale = acc_t(1) + tau_over_weight * sqrt(gy * gy + gx * gx);
      py[i] = (py[i] - tau * gy) / scale;
      px[i] = (px[i] - tau * gx) / scale;
    }
    __syncthreads();
  }
}

at::Tensor tv_denoise_fwd_cuda(const at::Tensor& x_in, double weight, int64_t iters) {
  check_tv_denoise_inputs(x_in, weight, iters);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  at::Tensor out = at::empty_like(x);
  const int64_t height = x.size(2), width = x.size(3);
  const int64_t planes = x.size(0) * x.size(1), area = height * width;
  if (planes == 0 || area == 0) return out;
  const auto stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "tv_denoise_fwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const int64_t bytes = 3 * area * static_cast<int64_t>(sizeof(acc_t));
    const bool in_shared = bytes <= kSharedBytes;
    at::Tensor scratch;
    if (!in_shared) scratch = at::empty({planes, 3, area}, x.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    const int threads = area >= 4096 ? 1024 : 256;
    const acc_t tau = static_cast<acc_t>(kTvTau);
    tv_denoise_kernel<scalar_t, acc_t><<<planes, threads, in_shared ? bytes : 0, stream>>>(
        x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
        in_shared ? nullptr : scratch.mutable_data_ptr<acc_t>(), height, width, tau,
        tau / static_cast<acc_t>(weight), iters, in_shared);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CUDA, m) { m.impl("tv_denoise_fwd", &tv_denoise_fwd_cuda); }

}  // namespace orthocore
