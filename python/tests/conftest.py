# Tests of the attnvet Python package, run from the checkout with no install:
#   /usr/bin/python3 -m pytest python/
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytest_plugins = ["pytester", "attnvet.pytest_plugin"]

import attnvet  # noqa: E402

# Build (or find) the binary once; subprocesses (pytester, workers) inherit it.
os.environ.setdefault("ATTNVET_BIN", attnvet.find_binary()[0])
