"""``python -m areya`` = the ``areya`` command."""

from areya.cli import main

if __name__ == "__main__":
    main()
