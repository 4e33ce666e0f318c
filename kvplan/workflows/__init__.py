"""What operators do with plans: budgets for CI (check), grids (sweep), and
startup logs re-planned (log)."""
