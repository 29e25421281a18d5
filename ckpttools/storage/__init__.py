"""Where bytes come from and go to: atomic output files and bounded read-ahead."""
