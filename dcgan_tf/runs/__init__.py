"""Layer 2, a run on disk: its folder and file names, its checkpoints, the lock that keeps one writer, and loading the
trained model back.

- folders: run folders, their file names, finding a run, the saved config a resumed run must match
- checkpoints: what a checkpoint holds, and restoring the newest readable one
- lock: one writer per run folder (an OS file lock naming its holder)
- trained: `load_trained(config)`, `write_test_grid(config)`
"""
