#!/usr/bin/env python3
"""`make run`: the whole platform on 127.0.0.1:${PORT:-8080}, offline (see scripts/embedded/)."""
import sys

from embedded.stack import main

if __name__ == "__main__":
    sys.exit(main())
