"""The entry point of the ``proxyhunt`` command and of ``python -m proxyhunt``."""

import sys


def run() -> None:
    """Import the command line and run it; Ctrl-C while importing ends as it does later, with status 130."""
    try:
        # Importing DuckDB, pyarrow and pySigma takes about half a second, and an
        # interrupt then would otherwise end in a traceback.
        from proxyhunt.cli import main
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
