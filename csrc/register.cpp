// The one schema registry of orthocore's compiled kernels.
//
// Each kernel is declared here once and implemented per device in csrc/cpu/*.cpp
// (TORCH_LIBRARY_IMPL(orthocore, CPU, m)) and csrc/cuda/*.cu (... CUDA ...). Python
// reaches them through torch.ops.orthocore.<name>; orthocore.ops wraps them in the
// public custom ops (autograd, fake tensors, backend choice). Importing the module
// `orthocore._C` runs these registrations; it exposes no Python functions itself.
#include <Python.h>
#include <torch/library.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(orthocore, m) {
  // Per-row statistics and cosine of two (B, D) contiguous tensors of one dtype.
  // Returns delta (B,) in the input dtype and stats (B, 3) = [a.b, |a|^2, |b|^2] in the
  // accumulation dtype (float32, or float64 for float64 inputs).
  m.def("normalized_dot_fwd(Tensor a, Tensor b) -> (Tensor delta, Tensor stats)");
  // Gradients of sum(grad_delta * delta) with respect to a and b from the saved stats.
  // A gradient that is not asked for comes back as an empty tensor.
  m.def(
      "normalized_dot_bwd(Tensor grad_delta, Tensor a, Tensor b, Tensor stats, bool need_a, "
      "bool need_b) -> (Tensor grad_a, Tensor grad_b)");
  // One step of a gradient attack on (B, D) rows of one dtype: optional momentum
  // (grad / mean|grad| + decay * momentum), sign (L-inf) or unit-L2 direction, step by the
  // per-row step, projection onto the per-row eps-ball around clean, clamp to [0, 1].
  // step and eps are (B,) in the accumulation dtype. Without momentum, new_momentum is empty.
  m.def(
      "attack_step_fwd(Tensor adv, Tensor grad, Tensor clean, Tensor? momentum, Tensor step, Tensor eps, "
      "bool l2, float decay) -> (Tensor out, Tensor new_momentum)");
  // JPEG round trip (orthocore/ops/jpeg.py) of contiguous (B, 1 or 3, H, W) images in
  // [0, 1]: tables (2, 64) int32 luminance / chrominance quantisers, dct (2, 8, 8) int32
  // islow forward / inverse matrices. Returns (B, C, H, W) levels k/255 in x's dtype.
  m.def("jpeg_roundtrip(Tensor x, Tensor tables, Tensor dct) -> Tensor");
  // Bit-depth reduction rint(x * (2^bits - 1)) / (2^bits - 1) of x in [0, 1], computed
  // in float64 and cast back; same shape and dtype as x.
  m.def("bit_depth_reduce(Tensor x, int bits) -> Tensor");
  // Chambolle's total-variation iteration on every (image, channel) plane of a (B, C, H, W)
  // tensor, as skimage.restoration.denoise_tv_chambolle(eps=0) runs it: `iters` iterations.
  m.def("tv_denoise_fwd(Tensor x, float weight, int iters) -> Tensor");
  // Bilateral filter of a (B, C, H, W) tensor with OpenCV's weights (L1 colour distance
  // summed over channels, circular window of the given radius) and reflect-101 borders.
  m.def("bilateral_fwd(Tensor x, int radius, float sigma_color, float sigma_space) -> Tensor");
  // Its vector-Jacobian product: the gradient with respect to x (B, C, H, W) of
  // sum(grad * bilateral_fwd(x, ...)), through the colour weights and the reflected borders.
  m.def("bilateral_bwd(Tensor grad, Tensor x, int radius, float sigma_color, float sigma_space) -> Tensor");
  // Double backward of train-mode batch norm over (B, C, ...): given the upstream
  // gradients of the first backward's outputs (ggx for grad_x; ggw, ggb for the weight
  // and bias gradients, optional), the first backward's inputs (gy, x, weight) and the
  // forward's per-channel batch mean and invstd, returns the gradients with respect to
  // gy (B, C, ...), x (B, C, ...; the batch statistics' dependence on x included) and
  // weight (C,).
  m.def(
      "batch_norm_double_backward_fused(Tensor ggx, Tensor? ggw, Tensor? ggb, Tensor gy, Tensor x, Tensor weight, "
      "Tensor mean, Tensor invstd) -> (Tensor ggy, Tensor gx, Tensor gw)");
}

// Tells Python whether this build carries the CUDA kernels.
TORCH_LIBRARY_FRAGMENT(orthocore, m) {
  m.def("_built_with_cuda() -> bool", []() -> bool {
#ifdef ORTHOCORE_WITH_CUDA
    return true;
#else
    return false;
#endif
  });
}
