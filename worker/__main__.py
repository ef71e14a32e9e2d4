"""`python -m worker` and the `prospect-worker` command: the CLI in worker/cli/."""

import sys


def entry() -> int:
    try:
        # Imported here, so a Ctrl-C while the CLI loads (a second on a busy machine) is an
        # interruption like any other rather than a traceback.
        from worker.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    try:
        return main()
    except KeyboardInterrupt:
        # Ctrl-C in the instant after a command's own handling (while a server is torn down).
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(entry())
