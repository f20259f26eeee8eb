// jpeg on CUDA, the same two passes as csrc/cpu/jpeg.cpp and the same per-job code
// (../jpeg.h): pass 1 is one thread per job (a luma block, or a Cb + Cr block pair),
// pass 2 one thread per output pixel. A job's 8x8 integer transforms run in registers
// and local memory; the planes between the passes are uint8.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../jpeg.h"

namespace orthocore {
namespace {

constexpr int kJobThreads = 64;
constexpr int kPixelThreads = 256;

template <typename scalar_t>
__global__ void jpeg_code_blocks_kernel(const jpeg::Levels<scalar_t> levels, const jpeg::Planes planes,
                                        const int32_t* __restrict__ q, const int32_t* __restrict__ dct,
                                        int64_t jobs) {
  const int64_t job = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (job < jobs) jpeg::code_job(levels, planes, q, dct, job);
}

template <typename scalar_t, typename acc_t>
__global__ void jpeg_reconstruct_kernel(const jpeg::Planes planes, scalar_t* __restrict__ out, int64_t pixels) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= pixels) return;
  const int64_t plane = planes.g.height * planes.g.width;
  jpeg::write_pixel<scalar_t, acc_t>(planes, out, n / plane, n % plane / planes.g.width, n % planes.g.width);
}

at::Tensor jpeg_roundtrip_cuda(const at::Tensor& x_in, const at::Tensor& tables_in, const at::Tensor& dct_in) {
  const c10::cuda::CUDAGuard guard(x_in.device());
  jpeg::Roundtrip trip(x_in, tables_in, dct_in);
  const at::Tensor &x = trip.x, &tables = trip.tables, &dct = trip.dct, &out = trip.out;
  const jpeg::Geometry& g = trip.g;
  if (g.batch == 0) return out;
  const jpeg::Planes planes = trip.planes();
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t jobs = g.jobs(), pixels = g.batch * g.height * g.width;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "jpeg_roundtrip_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const jpeg::Levels<scalar_t> levels{x.const_data_ptr<scalar_t>(), g};
    jpeg_code_blocks_kernel<scalar_t><<<(jobs + kJobThreads - 1) / kJobThreads, kJobThreads, 0, stream>>>(
        levels, planes, tables.const_data_ptr<int32_t>(), dct.const_data_ptr<int32_t>(), jobs);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    jpeg_reconstruct_kernel<scalar_t, acc_t><<<(pixels + kPixelThreads - 1) / kPixelThreads, kPixelThreads, 0,
                                               stream>>>(planes, out.mutable_data_ptr<scalar_t>(), pixels);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CUDA, m) { m.impl("jpeg_roundtrip", &jpeg_roundtrip_cuda); }

}  // namespace orthocore
