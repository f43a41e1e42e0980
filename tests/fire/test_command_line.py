"""The `python -m fire` command line's own texts."""

from servers import run_fire


def test_help_is_plain_text_without_rest_markup():
    result = run_fire("--help")
    assert result.returncode == 0, result.stderr
    assert "Serve Python modules to fire clients, without a framework" in result.stdout
    # the installed launcher (djfire's) says how a Django service starts its server
    assert "a Django service runs `python manage.py runfireserver ADDRESS` instead" in " ".join(
        result.stdout.split()
    )
    assert "``" not in result.stdout  # argparse prints reST markup literally
