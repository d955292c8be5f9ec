"""The command line: a thin shell over ``etl.api``.

Its process is the tool's own, so the libraries are tuned here, before anything under the
command line imports pyarrow or numpy (etl/core/process_setup.py); ``import etl`` alone changes
nothing.
"""

from etl.core.process_setup import own_process

own_process()
