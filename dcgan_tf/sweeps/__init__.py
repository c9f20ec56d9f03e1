"""Layer 3, sweeps: many runs of a grid of settings and seeds, run as ordinary runs and reported together.

- plan: parsing and planning a sweep, and its record (sweep.json)
- runner: running a sweep's runs, each its own process, several at a time
- disk_budget: what a run will write, and the thinning that keeps a sweep within --disk_budget_mb
- report: report.md and report.html from what the runs hold now
"""
