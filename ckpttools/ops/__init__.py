"""Operations on open checkpoints: listing, statistics, comparing, extracting values.

Each module takes checkpoints from the reader and returns small dataclasses; the CLI renders them.
"""
