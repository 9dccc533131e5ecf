import subprocess
import sys

from click.testing import CliRunner

import tenement
from tenement.cli import ten


def test_version_matches_the_package() -> None:
    result = CliRunner().invoke(ten, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"tenement {tenement.__version__}\n"


def test_short_version_flag_from_a_real_process() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tenement", "-V"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("tenement ")
