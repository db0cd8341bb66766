"""The cross-agency customer-feedback warehouse (README.md has the map of its folders)."""

import os

# Everything the pipeline writes (warehouse, quarantine, published snapshot, audit pages, logs)
# holds personal data or is derived from it: owner and group only, never world-readable.
os.umask(0o027)
