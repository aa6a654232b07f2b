"""``python -m sae_lens_freq ...`` is the ``sae-lens-freq`` command."""

import sys

from sae_lens_freq.cli import main

if __name__ == "__main__":
    sys.exit(main())
