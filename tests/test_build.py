"""The installation: what got built, and that import survives a missing build."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import orthocore


def _cuda_toolkit_present() -> bool:
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    return shutil.which("nvcc") is not None and os.path.isfile(os.path.join(home, "include", "cuda_runtime.h"))


def test_cpu_kernels_are_built():
    assert orthocore.backends()["cpu"].available, orthocore.backends()["cpu"].reason


@pytest.mark.skipif(
    not _cuda_toolkit_present() or torch.version.cuda is None or os.environ.get("ORTHOCORE_BUILD_CUDA") == "0",
    reason="no CUDA toolkit or CUDA build of torch: the CUDA kernels are not compiled here",
)
def test_cuda_kernels_are_compiled_where_a_toolkit_exists():
    """CI has nvcc but no GPU: the CUDA sources must still compile and link."""
    assert torch.ops.orthocore._built_with_cuda()
    for op in ("normalized_dot_fwd", "normalized_dot_bwd"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"orthocore::{op}", "CUDA"), op


def test_import_without_compiled_extension_falls_back_to_reference():
    script = textwrap.dedent(
        """
        import sys, warnings
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "orthocore._C":
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, Block())
        import torch
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import orthocore
            status = orthocore.backends()
        assert not status["cpu"].available and "blocked for the test" in status["cpu"].reason
        assert not status["cuda"].available
        assert any("compiled kernels unavailable" in str(w.message) for w in caught)
        delta = orthocore.ops.normalized_dot(torch.ones(2, 3), torch.ones(2, 3))
        assert torch.allclose(delta, torch.ones(2))
        try:
            with orthocore.use_backend("cpu"):
                orthocore.ops.normalized_dot(torch.ones(2, 3), torch.ones(2, 3))
        except orthocore.BackendUnavailableError as error:
            assert "unavailable" in str(error)
        else:
            raise AssertionError("forcing the missing cpu backend must fail")
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_backend_switch_validation(monkeypatch):
    with pytest.raises(ValueError, match="use_backend"):
        with orthocore.use_backend("tpu"):
            pass
    monkeypatch.setenv("ORTHOCORE_BACKEND", "tpu")
    with pytest.raises(ValueError, match="ORTHOCORE_BACKEND"):
        orthocore.ops.normalized_dot(torch.ones(1, 2), torch.ones(1, 2))
    monkeypatch.setenv("ORTHOCORE_BACKEND", "reference")
    FORWARD = orthocore.dispatch.registered()["normalized_dot"]

    assert FORWARD.select(torch.device("cpu")) == "reference"
    with orthocore.use_backend("cpu"):  # the context manager wins over the environment
        assert FORWARD.select(torch.device("cpu")) == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where no GPU exists")
def test_forcing_cuda_without_gpu_is_a_clear_error():
    with orthocore.use_backend("cuda"), pytest.raises(orthocore.BackendUnavailableError, match="cuda"):
        orthocore.ops.normalized_dot(torch.ones(1, 2), torch.ones(1, 2))


def test_one_version_string():
    """pyproject.toml reads the version from orthocore.__version__, so the installed
    metadata and the package agree, and the number is written once."""
    import tomllib
    from importlib import metadata
    from pathlib import Path

    assert metadata.version("orthocore") == orthocore.__version__
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "orthocore.__version__"}
