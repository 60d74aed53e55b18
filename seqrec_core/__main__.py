"""`python -m seqrec_core ...`: see seqrec_core/cli.py."""
import sys

from seqrec_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
