"""``python -m loosely``: the same as the ``loosely`` command."""

from loosely.cli import main

if __name__ == "__main__":
    main(prog_name="loosely")
