import subprocess
import sys


def test_lpds_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "lpds_sim.cli", "--help"], capture_output=True, text=True, check=True)
    assert "usage: lpds" in out.stdout


def test_lpds_without_command_fails_with_usage():
    out = subprocess.run([sys.executable, "-m", "lpds_sim.cli"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "usage: lpds" in out.stdout
