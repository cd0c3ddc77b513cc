"""Proves the py-client environment has the Python client (venv.py runs it after installing)."""

import weave

assert weave.__version__ == "0.54.0", weave.__version__
