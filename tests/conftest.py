"""Suite-wide fixtures."""
import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. The whole suite compiles thousands of
    XLA CPU executables and keeps them alive; twice it then died with a segmentation fault inside
    XLA's compiler in a late module that passes on its own. Released per module, the process's
    memory mappings peak near 11,000 (the kernel allows 65,530) and the suite passes. Each module
    recompiles what it needs."""
    yield
    jax.clear_caches()
