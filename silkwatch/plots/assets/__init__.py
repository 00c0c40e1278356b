"""Vendored chart assets (ECharts, world shapes), inlined into every page; see ``build.py``."""
