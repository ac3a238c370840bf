"""Engines that run rule SQL over the WebSession table: DuckDB, the default."""
