"""The `python -m fire` command line's own texts."""

from servers import run_fire


def test_help_is_plain_text_without_rest_markup():
    result = run_fire("--help")
    assert result.returncode == 0, result.stderr
    assert "Serve Python modules to fire clients, without Django" in result.stdout
    assert "``" not in result.stdout  # argparse prints reST markup literally
