"""Tenant apps the benchmarks run behind both servers (stdlib only, started as scripts)."""
