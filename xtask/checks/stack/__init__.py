"""The expanded-stack check (`python -m xtask.checks.stack`, run by `cargo xtask check`), by concern:
model (loading, intrinsics, samconfig), base (shared state), edge, iam, alarms, stateful,
settings, cors (with vtl, its mapping template interpreter) and checkov; __main__ runs them
all and prints one line per check."""
