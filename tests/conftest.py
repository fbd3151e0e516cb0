"""Suite-wide fixtures."""
import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. The whole suite compiles thousands of
    XLA CPU executables; kept alive together their JIT code mappings approach the kernel's
    per-process map limit (vm.max_map_count, 65,530 here), and XLA's compiler then crashed with a
    segmentation fault in a later module. Each module recompiles what it needs."""
    yield
    jax.clear_caches()
