// Shared by the CPU and CUDA kernels of jpeg: the per-sample and per-block steps of
// libjpeg's baseline round trip (orthocore/ops/jpeg.py documents the pipeline and holds
// the plain-PyTorch reference). The quantisation tables and the islow DCT matrices come
// from Python (orthocore/formulas/jpeg_tables.py) as tensors; the fixed-point colour
// constants and shifts below mirror the ones there.
//
// Every bound fits int32: the largest pre-shift sum of the inverse transform is below
// 2^31 for any 8-bit input (see jpeg_tables for the derivation of the matrices).
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>
#include <cmath>
#include <cstdint>

namespace orthocore {
namespace jpeg {

constexpr int kFdctShift1 = 11, kFdctShift2 = 15;  // jpeg_tables.FDCT_SHIFTS
constexpr int kIdctShift1 = 11, kIdctShift2 = 18;  // jpeg_tables.IDCT_SHIFTS
constexpr int kColorBits = 16;                      // jpeg_tables.COLOR_BITS
constexpr int32_t kHalf = 1 << (kColorBits - 1);
// jpeg_tables.RGB_TO_YCC (rows Y, Cb, Cr) and YCC_TO_RGB
constexpr int32_t kYR = 19595, kYG = 38470, kYB = 7471;
constexpr int32_t kCbR = -11059, kCbG_ = -21709, kCbB_ = 32768;
constexpr int32_t kCrR_ = 32768, kCrG_ = -27439, kCrB = -5329;
constexpr int32_t kChromaOffset = (128 << kColorBits) + kHalf - 1;
constexpr int32_t kCrR = 91881, kCbG = -22554, kCrG = -46802, kCbB = 116130;

inline void check_inputs(const at::Tensor& x, const at::Tensor& tables, const at::Tensor& dct) {
  TORCH_CHECK(x.dim() == 4 && (x.size(1) == 1 || x.size(1) == 3),
              "jpeg_roundtrip: x must be (B, 1 or 3, H, W), got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "jpeg_roundtrip: x must be floating, got ", x.scalar_type());
  TORCH_CHECK(x.size(2) > 0 && x.size(3) > 0, "jpeg_roundtrip: images must be at least 1x1, got ", x.sizes());
  TORCH_CHECK(tables.dim() == 2 && tables.size(0) == 2 && tables.size(1) == 64 && tables.scalar_type() == at::kInt,
              "jpeg_roundtrip: tables must be int32 (2, 64), got ", tables.scalar_type(), " ", tables.sizes());
  TORCH_CHECK(dct.dim() == 3 && dct.size(0) == 2 && dct.size(1) == 8 && dct.size(2) == 8 &&
                  dct.scalar_type() == at::kInt,
              "jpeg_roundtrip: dct must be int32 (2, 8, 8), got ", dct.scalar_type(), " ", dct.sizes());
  TORCH_CHECK(tables.device() == x.device() && dct.device() == x.device(),
              "jpeg_roundtrip: tables and dct must be on the device of x (", x.device(), ")");
}

// The padded planes of one batch: luma (B, rows, cols); chroma (B, 2, rows/2, cols/2).
struct Geometry {
  int64_t batch, channels, height, width, rows, cols;

  Geometry(int64_t b, int64_t c, int64_t h, int64_t w) : batch(b), channels(c), height(h), width(w) {
    const int64_t mcu = c == 3 ? 16 : 8;
    rows = (h + mcu - 1) / mcu * mcu;
    cols = (w + mcu - 1) / mcu * mcu;
  }
  int64_t luma_blocks() const { return batch * (rows / 8) * (cols / 8); }
  // Jobs of pass 1: one per luma block, one per pair of chroma blocks (Cb and Cr).
  int64_t jobs() const { return luma_blocks() + (channels == 3 ? batch * (rows / 16) * (cols / 16) : 0); }
};

// Round half to even of 0 <= v < 2^52. On the host, adding and removing 2^52 leaves
// the nearest integer under the default rounding mode without a libm call (no
// -ffast-math here, so the compiler keeps the pair); CUDA has a rounding instruction.
C10_HOST_DEVICE inline double round_half_even(double v) {
#ifdef __CUDA_ARCH__
  return nearbyint(v);
#else
  constexpr double shifter = 4503599627370496.0;
  return (v + shifter) - shifter;
#endif
}

C10_HOST_DEVICE inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
C10_HOST_DEVICE inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
C10_HOST_DEVICE inline int32_t clamp255(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

// Read access to contiguous (B, C, H, W) images as 8-bit levels rint(255 x), computed
// in float64 (exact for every input dtype but float64 itself).
template <typename scalar_t>
struct Levels {
  const scalar_t* data;
  Geometry g;

  C10_HOST_DEVICE int32_t at(int64_t b, int64_t c, int64_t r, int64_t col) const {
    const double v = static_cast<double>(data[((b * g.channels + c) * g.height + r) * g.width + col]);
    return static_cast<int32_t>(round_half_even(v * 255.0));
  }
  // Luma of a pixel (jccolor.c), or the level itself for gray.
  C10_HOST_DEVICE int32_t y_at(int64_t b, int64_t r, int64_t col) const {
    if (g.channels == 1) return at(b, 0, r, col);
    return (kYR * at(b, 0, r, col) + kYG * at(b, 1, r, col) + kYB * at(b, 2, r, col) + kHalf) >> kColorBits;
  }
  // Adds the Cb and Cr of a pixel (jccolor.c) to sums[0], sums[1].
  C10_HOST_DEVICE void add_cbcr(int64_t b, int64_t r, int64_t col, int32_t* sums) const {
    const int32_t red = at(b, 0, r, col), green = at(b, 1, r, col), blue = at(b, 2, r, col);
    sums[0] += (kCbR * red + kCbG_ * green + kCbB_ * blue + kChromaOffset) >> kColorBits;
    sums[1] += (kCrR_ * red + kCrG_ * green + kCrB * blue + kChromaOffset) >> kColorBits;
  }
  // Sample (r, col) of the padded luma plane: rows and columns past the image repeat.
  C10_HOST_DEVICE int32_t luma(int64_t b, int64_t r, int64_t col) const {
    return y_at(b, min64(r, g.height - 1), min64(col, g.width - 1));
  }
  // Sample (i, j) of the padded, downsampled Cb and Cr planes: 2x2 box average with
  // libjpeg's alternating bias 1, 2 (jcsample.c). Full-resolution columns are
  // replicated before averaging, downsampled rows after (jcprepct.c).
  C10_HOST_DEVICE void chroma(int64_t b, int64_t i, int64_t j, int32_t* cbcr) const {
    i = min64(i, (g.height + 1) / 2 - 1);
    const int64_t r0 = 2 * i, r1 = min64(2 * i + 1, g.height - 1);
    const int64_t c0 = min64(2 * j, g.width - 1), c1 = min64(2 * j + 1, g.width - 1);
    int32_t sums[2] = {0, 0};
    add_cbcr(b, r0, c0, sums);
    add_cbcr(b, r0, c1, sums);
    add_cbcr(b, r1, c0, sums);
    add_cbcr(b, r1, c1, sums);
    const int32_t bias = 1 + static_cast<int32_t>(j & 1);
    cbcr[0] = (sums[0] + bias) >> 2;
    cbcr[1] = (sums[1] + bias) >> 2;
  }

  // The 8x8 luma block (br, bc) of image b.
  C10_HOST_DEVICE void luma_block(int64_t b, int64_t br, int64_t bc, int32_t* block) const {
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) block[r * 8 + c] = luma(b, br * 8 + r, bc * 8 + c);
  }
  // The 8x8 Cb and Cr blocks (br, bc) of image b.
  C10_HOST_DEVICE void chroma_blocks(int64_t b, int64_t br, int64_t bc, int32_t* cb, int32_t* cr) const {
    for (int r = 0; r < 8; ++r) {
      for (int c = 0; c < 8; ++c) {
        int32_t cbcr[2];
        chroma(b, br * 8 + r, bc * 8 + c, cbcr);
        cb[r * 8 + c] = cbcr[0];
        cr[r * 8 + c] = cbcr[1];
      }
    }
  }
};

// Writes an 8x8 block of samples 0..255 at `dst` (row stride `stride`).
C10_HOST_DEVICE inline void store_block(const int32_t* block, uint8_t* dst, int64_t stride) {
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) dst[r * stride + c] = static_cast<uint8_t>(block[r * 8 + c]);
}

C10_HOST_DEVICE inline int32_t descale(int32_t x, int shift) { return (x + (1 << (shift - 1))) >> shift; }

// out[i*8+u] = descale(sum_k m[u*8+k] * in[i*8+k]) along rows (in_step 1, line_step 8) or,
// with the steps swapped, along columns.
C10_HOST_DEVICE inline void transform_lines(const int32_t* in, const int32_t* m, int shift, int32_t* out,
                                            int elem_step, int line_step) {
  for (int line = 0; line < 8; ++line) {
    for (int u = 0; u < 8; ++u) {
      int32_t sum = 0;
      for (int k = 0; k < 8; ++k) sum += m[u * 8 + k] * in[line * line_step + k * elem_step];
      out[line * line_step + u * elem_step] = descale(sum, shift);
    }
  }
}

// The lossy core on one 8x8 block of samples 0..255, in place: level shift, islow DCT,
// quantisation with rounding, dequantisation, islow IDCT, clamp (jcdctmgr.c, jidctint.c).
C10_HOST_DEVICE inline void code_block(int32_t* block, const int32_t* q, const int32_t* fdct, const int32_t* idct) {
  int32_t work[64];
  for (int i = 0; i < 64; ++i) block[i] -= 128;
  transform_lines(block, fdct, kFdctShift1, work, 1, 8);  // rows
  transform_lines(work, fdct, kFdctShift2, block, 8, 1);  // columns
  for (int i = 0; i < 64; ++i) {
    const int32_t divisor = 8 * q[i];
    const int32_t magnitude = ((block[i] < 0 ? -block[i] : block[i]) + divisor / 2) / divisor;
    block[i] = (block[i] < 0 ? -magnitude : magnitude) * q[i];
  }
  transform_lines(block, idct, kIdctShift1, work, 8, 1);  // columns
  transform_lines(work, idct, kIdctShift2, block, 1, 8);  // rows
  for (int i = 0; i < 64; ++i) block[i] = clamp255(block[i] + 128);
}

// libjpeg's h2v2 "fancy" (triangular) upsampling of a decoded chroma plane at output
// pixel (r, c); planes at most 2 samples wide are replicated instead (jdsample.c).
// plane: the (h, w) real part of a plane with row stride `stride`.
C10_HOST_DEVICE inline int32_t upsample(const uint8_t* plane, int64_t stride, int64_t h, int64_t w, int64_t r,
                                        int64_t c) {
  const int64_t i = r >> 1, j = c >> 1;
  if (w <= 2) return plane[i * stride + j];
  const int64_t iv = (r & 1) ? min64(i + 1, h - 1) : max64(i - 1, 0);
  const int64_t jn = (c & 1) ? min64(j + 1, w - 1) : max64(j - 1, 0);
  const int32_t here = 3 * plane[i * stride + j] + plane[iv * stride + j];
  const int32_t next = 3 * plane[i * stride + jn] + plane[iv * stride + jn];
  return (3 * here + next + 8 - static_cast<int32_t>(c & 1)) >> 4;
}

// jdcolor.c's YCbCr -> RGB of one pixel, clamped to 0..255.
C10_HOST_DEVICE inline void ycc_to_rgb(int32_t y, int32_t cb, int32_t cr, int32_t* rgb) {
  cb -= 128;
  cr -= 128;
  rgb[0] = clamp255(y + ((kCrR * cr + kHalf) >> kColorBits));
  rgb[1] = clamp255(y + ((kCbG * cb + kCrG * cr + kHalf) >> kColorBits));
  rgb[2] = clamp255(y + ((kCbB * cb + kHalf) >> kColorBits));
}

// The decoded planes of a batch (uint8): luma (B, rows, cols), chroma (B, 2, rows/2, cols/2).
struct Planes {
  uint8_t* luma;
  uint8_t* chroma;  // null for gray
  Geometry g;

  C10_HOST_DEVICE uint8_t* luma_block(int64_t b, int64_t br, int64_t bc) const {
    return luma + (b * g.rows + br * 8) * g.cols + bc * 8;
  }
  C10_HOST_DEVICE uint8_t* chroma_plane(int64_t b, int k) const {
    return chroma + (b * 2 + k) * (g.rows / 2) * (g.cols / 2);
  }
  // The output levels of pixel (r, c) of image b: Y, or R, G, B.
  C10_HOST_DEVICE void pixel(int64_t b, int64_t r, int64_t c, int32_t* out) const {
    const int32_t y = luma[(b * g.rows + r) * g.cols + c];
    if (chroma == nullptr) {
      out[0] = y;
      return;
    }
    const int64_t h = (g.height + 1) / 2, w = (g.width + 1) / 2, stride = g.cols / 2;
    ycc_to_rgb(y, upsample(chroma_plane(b, 0), stride, h, w, r, c), upsample(chroma_plane(b, 1), stride, h, w, r, c),
               out);
  }
};

// Pass 1, one job: luma block `job`, or (past the luma blocks) the Cb and Cr blocks
// of chroma block `job - luma_blocks`. Decoded samples go to `planes`.
template <typename scalar_t>
C10_HOST_DEVICE inline void code_job(const Levels<scalar_t>& levels, const Planes& planes, const int32_t* q,
                                     const int32_t* dct, int64_t job) {
  const Geometry& g = planes.g;
  const int32_t* fdct = dct;
  const int32_t* idct = dct + 64;
  int32_t first[64], second[64];
  int64_t block_cols = g.cols / 8, block_rows = g.rows / 8;
  const int64_t luma_blocks = g.batch * block_rows * block_cols;
  if (job < luma_blocks) {
    const int64_t b = job / (block_rows * block_cols), br = job / block_cols % block_rows, bc = job % block_cols;
    levels.luma_block(b, br, bc, first);
    code_block(first, q, fdct, idct);
    store_block(first, planes.luma_block(b, br, bc), g.cols);
    return;
  }
  job -= luma_blocks;
  block_cols /= 2;
  block_rows /= 2;
  const int64_t b = job / (block_rows * block_cols), br = job / block_cols % block_rows, bc = job % block_cols;
  levels.chroma_blocks(b, br, bc, first, second);
  code_block(first, q + 64, fdct, idct);
  code_block(second, q + 64, fdct, idct);
  const int64_t offset = br * 8 * (g.cols / 2) + bc * 8;
  store_block(first, planes.chroma_plane(b, 0) + offset, g.cols / 2);
  store_block(second, planes.chroma_plane(b, 1) + offset, g.cols / 2);
}

// Pass 2, one output pixel (r, c) of image b: all channels of out (B, C, H, W), level / 255.
template <typename scalar_t, typename acc_t>
C10_HOST_DEVICE inline void write_pixel(const Planes& planes, scalar_t* out, int64_t b, int64_t r, int64_t c) {
  const Geometry& g = planes.g;
  int32_t levels[3];
  planes.pixel(b, r, c, levels);
  const int64_t plane = g.height * g.width;
  scalar_t* dst = out + b * g.channels * plane + r * g.width + c;
  for (int64_t k = 0; k < g.channels; ++k) dst[k * plane] = static_cast<scalar_t>(acc_t(levels[k]) / acc_t(255));
}

// The tensors of one round trip, shared by the CPU and CUDA entry points: the checked,
// contiguous inputs, the output, and the 8-bit planes between the coding pass and the
// reconstruction pass. (On CUDA, construct it under the device guard.)
struct Roundtrip {
  at::Tensor x, tables, dct, out, luma, chroma;
  Geometry g;

  Roundtrip(const at::Tensor& x_in, const at::Tensor& tables_in, const at::Tensor& dct_in)
      : x((check_inputs(x_in, tables_in, dct_in), x_in.contiguous())),
        tables(tables_in.contiguous()),
        dct(dct_in.contiguous()),
        out(at::empty_like(x)),
        g(x.size(0), x.size(1), x.size(2), x.size(3)) {
    const auto bytes = x.options().dtype(at::kByte);
    luma = at::empty({g.batch, g.rows, g.cols}, bytes);
    chroma = at::empty({g.channels == 3 ? g.batch * 2 * (g.rows / 2) * (g.cols / 2) : 0}, bytes);
  }

  Planes planes() {
    return Planes{luma.mutable_data_ptr<uint8_t>(), g.channels == 3 ? chroma.mutable_data_ptr<uint8_t>() : nullptr, g};
  }
};

}  // namespace jpeg
}  // namespace orthocore
