import pytest

from .stack import Stack

# Fault tests run the product in processes of their own: the test session's database is never used.
pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path)
    stack.start_postgres()
    stack.manage("migrate", "--verbosity", "0")
    try:
        yield stack
    finally:
        stack.close()
