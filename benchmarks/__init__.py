"""The measuring tools: each reaches the app's layers through their public interfaces only (docs/benchmarks.md)."""
