"""Benchmarks of our ``ten serve`` against the reference tenement 0.2.2, and tools to
measure the proxy while changing it.

- ``make bench`` (``python -m bench.run``): both servers side by side, the targets of
  BENCHMARKS.md, ~12 minutes;
- ``python -m bench.profile``: py-spy samples of ``ten serve`` under wrk, or (``--cpu``)
  its CPU time per proxied request;
- ``python -m bench.instructions``: callgrind's count of the instructions one serving
  process executes per proxied request, steady within ~1% from run to run where the
  others move by 10-20%: the one to compare two trees with.
"""
