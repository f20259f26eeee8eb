// jpeg on the CPU: two passes over the batch. Pass 1 codes every 8x8 block (each job
// reads its pixels from the float images, converts and downsamples them, and runs the
// DCT / quantiser / IDCT) into uint8 planes; pass 2 upsamples the chroma and converts
// every output pixel back to RGB. The per-job and per-pixel work is in ../jpeg.h,
// shared with the CUDA kernels; here at::parallel_for splits it over threads.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../jpeg.h"

namespace orthocore {
namespace {

at::Tensor jpeg_roundtrip_cpu(const at::Tensor& x_in, const at::Tensor& tables_in, const at::Tensor& dct_in) {
  jpeg::Roundtrip trip(x_in, tables_in, dct_in);
  const at::Tensor &x = trip.x, &tables = trip.tables, &dct = trip.dct, &out = trip.out;
  const jpeg::Geometry& g = trip.g;
  if (g.batch == 0) return out;
  const jpeg::Planes planes = trip.planes();
  const int32_t* q = tables.const_data_ptr<int32_t>();
  const int32_t* matrices = dct.const_data_ptr<int32_t>();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "jpeg_roundtrip_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const jpeg::Levels<scalar_t> levels{x.const_data_ptr<scalar_t>(), g};
    at::parallel_for(0, g.jobs(), 16, [&](int64_t begin, int64_t end) {
      for (int64_t job = begin; job < end; ++job) jpeg::code_job(levels, planes, q, matrices, job);
    });
    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, g.batch * g.height, 8, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        for (int64_t c = 0; c < g.width; ++c) {
          jpeg::write_pixel<scalar_t, acc_t>(planes, out_ptr, row / g.height, row % g.height, c);
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) { m.impl("jpeg_roundtrip", &jpeg_roundtrip_cpu); }

}  // namespace orthocore
