"""The README's demo: `ten serve` on the example config, with two tenants of a notes app.

Run as ``python -m tenement.demo [--port 8080] [--dir tenement-demo]`` (``./dev demo`` does).
It lays out a working directory with ``tenement.toml`` (from ``examples/``), makes an admin
token, prints the ``curl`` lines that show two tenants with separate data, then replaces
itself with ``ten serve``. Everything it writes stays in that directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def prepare(workdir: Path) -> str:
    """Write the demo's tenement.toml into ``workdir`` and return a fresh admin token."""
    workdir.mkdir(parents=True, exist_ok=True)
    template = (EXAMPLES / "tenement.toml").read_text()
    app = EXAMPLES / "notes_app.py"
    config = template.replace("python3 examples/notes_app.py", f"{sys.executable} {app}")
    (workdir / "tenement.toml").write_text(config)
    token_file = workdir / "tenement-data" / "api_token"
    if not token_file.exists():
        subprocess.run(
            [sys.executable, "-m", "tenement", "token-gen"],
            cwd=workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return token_file.read_text().strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tenement.demo")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--dir", type=Path, default=Path("tenement-demo"))
    args = parser.parse_args(argv)
    workdir = args.dir.resolve()
    token = prepare(workdir)
    base = f"http://127.0.0.1:{args.port}"
    ten = Path(sys.executable).parent / "ten"
    print(
        f"""tenement demo: {workdir}

Two tenants of the notes app, each with its own data directory:

  curl -H 'Host: alice.notes.localhost' -d 'buy milk' {base}/
  curl -H 'Host: bob.notes.localhost' -d 'call mum' {base}/
  curl -H 'Host: alice.notes.localhost' {base}/          # only alice's notes
  curl -H 'Host: bob.notes.localhost' {base}/            # only bob's notes

The management API and CLI (admin token in {workdir}/api_token):

  curl -H 'Authorization: Bearer {token}' {base}/api/instances
  cd {workdir} && {ten} ps --server {base}
  cd {workdir} && {ten} spawn notes:carol --server {base}

Starting `ten serve --port {args.port}` (Ctrl-C stops the server and its tenants).
""",
        flush=True,
    )
    os.chdir(workdir)
    os.execv(
        sys.executable,
        [sys.executable, "-m", "tenement", "serve", "--port", str(args.port)],
    )


if __name__ == "__main__":
    main()
