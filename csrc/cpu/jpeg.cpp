// jpeg on the CPU: two passes over the batch. Pass 1 codes every 8x8 block (each job
// reads its pixels from the float images, converts and downsamples them, and runs the
// DCT / quantiser / IDCT) into uint8 planes; pass 2 upsamples the chroma and converts
// every output pixel back to RGB. Both passes split the work with at::parallel_for.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../jpeg.h"

namespace orthocore {
namespace {

using jpeg::Geometry;
using jpeg::Planes;

at::Tensor jpeg_roundtrip_cpu(const at::Tensor& x_in, const at::Tensor& tables_in, const at::Tensor& dct_in) {
  jpeg::check_inputs(x_in, tables_in, dct_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor tables = tables_in.contiguous();
  const at::Tensor dct = dct_in.contiguous();
  const Geometry g(x.size(0), x.size(1), x.size(2), x.size(3));
  at::Tensor out = at::empty_like(x);
  if (g.batch == 0) return out;
  at::Tensor luma = at::empty({g.batch, g.rows, g.cols}, x.options().dtype(at::kByte));
  at::Tensor chroma = at::empty({g.channels == 3 ? g.batch * 2 * (g.rows / 2) * (g.cols / 2) : 0},
                                x.options().dtype(at::kByte));
  const Planes planes{luma.mutable_data_ptr<uint8_t>(), g.channels == 3 ? chroma.mutable_data_ptr<uint8_t>() : nullptr,
                      g};
  const int32_t* q = tables.const_data_ptr<int32_t>();
  const int32_t* fdct = dct.const_data_ptr<int32_t>();
  const int32_t* idct = fdct + 64;
  const int64_t luma_jobs = g.luma_blocks();
  const int64_t jobs = luma_jobs + g.chroma_blocks() / 2;  // one chroma job codes Cb and Cr

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "jpeg_roundtrip_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const jpeg::Levels<scalar_t, acc_t> levels{x.const_data_ptr<scalar_t>(), g};
    const int64_t block_cols = g.cols / 8, block_rows = g.rows / 8;
    at::parallel_for(0, jobs, 16, [&](int64_t begin, int64_t end) {
      int32_t first[64], second[64];
      for (int64_t job = begin; job < end; ++job) {
        if (job < luma_jobs) {
          const int64_t b = job / (block_rows * block_cols), br = job / block_cols % block_rows, bc = job % block_cols;
          levels.luma_block(b, br, bc, first);
          jpeg::code_block(first, q, fdct, idct);
          jpeg::store_block(first, planes.luma_block(b, br, bc), g.cols);
          continue;
        }
        const int64_t t = job - luma_jobs, chroma_cols = block_cols / 2, chroma_rows = block_rows / 2;
        const int64_t b = t / (chroma_rows * chroma_cols), br = t / chroma_cols % chroma_rows, bc = t % chroma_cols;
        levels.chroma_blocks(b, br, bc, first, second);
        jpeg::code_block(first, q + 64, fdct, idct);
        jpeg::code_block(second, q + 64, fdct, idct);
        const int64_t offset = br * 8 * (g.cols / 2) + bc * 8;
        jpeg::store_block(first, planes.chroma_plane(b, 0) + offset, g.cols / 2);
        jpeg::store_block(second, planes.chroma_plane(b, 1) + offset, g.cols / 2);
      }
    });

    scalar_t* out_ptr = out.mutable_data_ptr<scalar_t>();
    const int64_t plane = g.height * g.width;
    at::parallel_for(0, g.batch * g.height, 8, [&](int64_t begin, int64_t end) {
      int32_t pixel[3];
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / g.height, r = row % g.height;
        scalar_t* dst = out_ptr + b * g.channels * plane + r * g.width;
        for (int64_t c = 0; c < g.width; ++c) {
          planes.pixel(b, r, c, pixel);
          for (int64_t k = 0; k < g.channels; ++k) dst[k * plane + c] = static_cast<scalar_t>(acc_t(pixel[k]) / acc_t(255));
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(orthocore, CPU, m) { m.impl("jpeg_roundtrip", &jpeg_roundtrip_cpu); }

}  // namespace orthocore
