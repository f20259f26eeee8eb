"""Build script for orthocore's compiled extension ``orthocore._C``.

The C++ CPU sources in ``csrc/cpu`` are always compiled (``-O3``, OpenMP). The CUDA
sources in ``csrc/cuda`` are compiled when a CUDA toolkit (``nvcc``) and a CUDA build of
torch are both present; ``ORTHOCORE_BUILD_CUDA=0`` or ``=1`` overrides that choice.
Without a visible GPU, ``TORCH_CUDA_ARCH_LIST`` defaults to ``8.0;9.0`` (A100, H100).
The Triton kernels in ``kernels/`` are installed as the sub-package ``orthocore.kernels``.
"""

import glob
import os

# torch guesses the toolkit from the location of nvcc, which can be a bare /usr/local;
# the standard toolkit folder, when it exists, is the better default.
if "CUDA_HOME" not in os.environ and os.path.isfile("/usr/local/cuda/include/cuda_runtime.h"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"

import torch  # noqa: E402
from setuptools import find_packages, setup  # noqa: E402
from torch.utils import cpp_extension  # noqa: E402


def _want_cuda() -> bool:
    switch = os.environ.get("ORTHOCORE_BUILD_CUDA")
    if switch is not None:
        if switch not in ("0", "1"):
            raise SystemExit(f"ORTHOCORE_BUILD_CUDA must be 0 or 1, got {switch!r}")
        return switch == "1"
    home = cpp_extension.CUDA_HOME
    return torch.version.cuda is not None and home is not None and os.path.isfile(f"{home}/include/cuda_runtime.h")


def _extension():
    cpu_sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    cxx_flags = ["-O3", "-fopenmp", "-fno-math-errno"]  # sqrt vectorises without errno
    link_flags = ["-fopenmp"]
    if not _want_cuda():
        return cpp_extension.CppExtension(
            "orthocore._C",
            cpu_sources,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=link_flags,
            py_limited_api=False,
        )
    if not torch.cuda.is_available():
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
    return cpp_extension.CUDAExtension(
        "orthocore._C",
        cpu_sources + sorted(glob.glob("csrc/cuda/*.cu")),
        define_macros=[("ORTHOCORE_WITH_CUDA", None)],
        extra_compile_args={
            "cxx": cxx_flags,
            "nvcc": ["-O3", "-lineinfo"],
        },
        extra_link_args=link_flags,
    )


setup(
    packages=find_packages(include=["orthocore", "orthocore.*"]) + ["orthocore.kernels"],
    package_dir={"orthocore": "orthocore", "orthocore.kernels": "kernels"},
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
